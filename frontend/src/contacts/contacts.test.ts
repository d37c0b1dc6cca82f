import { describe, expect, it } from "vitest";
import {
  NO_FILTERS,
  contactsQuery,
  displayName,
  exportUrl,
  fieldInput,
  fieldText,
  parseTags,
  timelineText,
  toggle,
  windowText,
} from "./contacts";

const NOW = Date.parse("2026-12-07T12:00:00Z");

describe("contactsQuery", () => {
  it("leaves out empty and unknown filters", () => {
    expect(contactsQuery(NO_FILTERS, NOW)).toEqual({});
    expect(contactsQuery({ ...NO_FILTERS, source: "telegram", window: "maybe" as never, field: "Bad Key=1" }, NOW)).toEqual({});
  });
  it("turns every filter into the API's parameters", () => {
    const query = contactsQuery(
      { q: "  ann ", tag: "lead, vip", field: "plan=pro", source: "dm", seen: "24h", window: "open" },
      NOW,
      50,
      100,
    );
    expect(query).toEqual({
      q: "ann",
      tag: ["lead", "vip"],
      field: ["plan=pro"],
      source: ["dm"],
      seen_after: "2026-12-06T12:00:00.000Z",
      window: "open",
      limit: 50,
      offset: 100,
    });
  });
  it("caps the search at the API's limit", () => {
    expect(contactsQuery({ ...NO_FILTERS, q: "x".repeat(500) }, NOW).q).toHaveLength(100);
  });
});

describe("exportUrl", () => {
  it("carries the filters, repeated parameters included, encoded", () => {
    const url = exportUrl("w 1", { ...NO_FILTERS, tag: "a&b, c", source: "ad" }, NOW);
    expect(url).toBe("/api/workspaces/w%201/contacts/export?tag=a%26b&tag=c&source=ad");
    expect(exportUrl("w", NO_FILTERS, NOW)).toBe("/api/workspaces/w/contacts/export");
  });
});

describe("tags and fields", () => {
  it("parses typed tags without empties, repeats or overlong ones", () => {
    expect(parseTags(" lead, vip ,, lead ," + "x".repeat(61))).toEqual(["lead", "vip"]);
  });
  it("keeps a field value's type and clears on empty", () => {
    expect(fieldInput("number", " 42 ")).toBe(42);
    expect(fieldInput("number", "forty")).toBe("forty");
    expect(fieldInput("boolean", "Yes")).toBe(true);
    expect(fieldInput("boolean", "off")).toBe(false);
    expect(fieldInput("email", "  ")).toBeNull();
    expect(fieldInput("text", "=1+1")).toBe("=1+1");
    expect(fieldText(false)).toBe("false");
    expect(fieldText(null)).toBe("");
    expect(fieldText(3.5)).toBe("3.5");
  });
});

describe("words", () => {
  it("says how long the window stays open", () => {
    expect(windowText({ open: false, expires_at: null }, NOW)).toBe("closed");
    expect(windowText({ open: true, expires_at: "2026-12-07T15:00:00Z" }, NOW)).toBe("open, 3 h left");
    expect(windowText({ open: true, expires_at: "2026-12-07T12:20:00Z" }, NOW)).toBe("open, 20 min left");
  });
  it("names a contact by what is known", () => {
    expect(displayName({ name: "Ann", username: "ann", igsid: "1" })).toBe("Ann (@ann)");
    expect(displayName({ name: null, username: "ann", igsid: "1" })).toBe("@ann");
    expect(displayName({ name: null, username: null, igsid: "77" })).toBe("Instagram user 77");
  });
  it("tells timeline entries apart", () => {
    const base = { at: "2026-12-07T12:00:00Z", id: "1" };
    expect(timelineText({ ...base, type: "event", kind: "instagram.dm", text: "hi" })).toBe("dm received: hi");
    expect(timelineText({ ...base, type: "run", kind: "Welcome", status: "completed" })).toBe("ran flow Welcome (completed)");
    expect(timelineText({ ...base, type: "message", kind: "send_dm", status: "sent", text: "yo" })).toBe("send dm sent: yo");
  });
  it("toggles selections", () => {
    const one = toggle(new Set(), ["a", "b"], true);
    expect([...one]).toEqual(["a", "b"]);
    expect([...toggle(one, ["a"], false)]).toEqual(["b"]);
  });
});
