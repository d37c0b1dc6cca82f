import { describe, expect, it } from "vitest";
import { ApiError } from "../api/client";
import {
  NO_FILTERS,
  eventSample,
  eventTrigger,
  eventsQuery,
  filterRefusal,
  jsonText,
  localToIso,
  nodeChangeText,
  outcomeText,
  parsePayload,
  sendText,
} from "./events";

const NOW = Date.parse("2026-12-07T12:00:00Z");

describe("eventsQuery", () => {
  it("asks for the last 24 hours by default and nothing else", () => {
    expect(eventsQuery(NO_FILTERS, NOW)).toEqual({ limit: 50, received_after: "2026-12-06T12:00:00.000Z" });
  });
  it("maps each chosen filter to its parameter", () => {
    const query = eventsQuery(
      { ...NO_FILTERS, source: "instagram", kind: " instagram.comment ", account: "1784", flow: "f1", outcome: "not_run", window: "1h" },
      NOW,
      20,
    );
    expect(query).toEqual({
      limit: 20,
      source: ["instagram"],
      kind: "instagram.comment",
      account: "1784",
      flow_id: "f1",
      outcome: "not_run",
      received_after: "2026-12-07T11:00:00.000Z",
    });
  });
  it("drops a source or outcome the API does not know", () => {
    expect(eventsQuery({ ...NO_FILTERS, source: "email", outcome: "maybe", window: "all" }, NOW)).toEqual({ limit: 50 });
  });
  it("uses the from/to fields for a custom range, in the browser's time zone", () => {
    const query = eventsQuery({ ...NO_FILTERS, window: "custom", from: "2026-12-01T08:30", to: "" }, NOW);
    expect(query.received_after).toBe(new Date(2026, 11, 1, 8, 30).toISOString());
    expect(query.received_before).toBeUndefined();
    expect(eventsQuery({ ...NO_FILTERS, window: "custom", from: "", to: "nonsense" }, NOW)).toEqual({ limit: 50 });
  });
});

describe("localToIso", () => {
  it("is undefined for empty or invalid input", () => {
    expect(localToIso("")).toBeUndefined();
    expect(localToIso("tomorrow")).toBeUndefined();
  });
});

describe("words", () => {
  it("names outcomes", () => {
    expect(outcomeText("not_run")).toBe("nothing ran");
    expect(outcomeText("resumed")).toBe("resumed a waiting run");
    expect(outcomeText("ran")).toBe("ran");
    expect(outcomeText("other")).toBe("other");
  });
  it("shows a send with its text, status and the policy's reason", () => {
    expect(sendText({ node_id: "r", action: "reply_comment", target: "179", text: "Price: 29 €", status: "sandboxed" })).toBe(
      "reply_comment to 179: 'Price: 29 €' (sandboxed)",
    );
    expect(sendText({ node_id: "r", action: "send_dm", target: "5", text: null, status: "refused", policy_reason: "outside the 24 h window" })).toBe(
      "send_dm to 5 (refused, outside the 24 h window)",
    );
  });
  it("says how a node changed", () => {
    expect(nodeChangeText({ change: "added", draft_status: "completed" })).toBe("only in the draft's run (completed)");
    expect(nodeChangeText({ change: "removed", published_status: "failed" })).toBe("only in the published run (failed)");
    expect(nodeChangeText({ change: "status", published_status: "completed", draft_status: "skipped" })).toBe("completed → skipped");
    expect(nodeChangeText({ change: "output" })).toBe("output changed");
  });
  it("shows JSON indented and nothing as a dash", () => {
    expect(jsonText({ a: 1 })).toBe('{\n  "a": 1\n}');
    expect(jsonText(null)).toBe("—");
    expect(jsonText("raw text")).toBe("raw text");
  });
});

describe("filterRefusal", () => {
  it("gives the reason of a trigger_filter_not_matched refusal", () => {
    const reason = "filter not matched: `trigger.text` contains 'price' was false for 'hello'";
    expect(filterRefusal(new ApiError(409, "trigger_filter_not_matched", "The draft would not start", { reason }))).toBe(reason);
    expect(filterRefusal(new ApiError(409, "trigger_filter_not_matched", "fallback message"))).toBe("fallback message");
  });
  it("ignores every other failure", () => {
    expect(filterRefusal(new ApiError(409, "flow_not_published", "x", { reason: "y" }))).toBeUndefined();
    expect(filterRefusal(new Error("boom"))).toBeUndefined();
    expect(filterRefusal(undefined)).toBeUndefined();
  });
});

describe("eventSample", () => {
  it("keeps a sample with an object payload", () => {
    expect(eventSample({ label: "l", kind: "instagram.comment", payload: { text: "hi" } })).toEqual({
      label: "l",
      kind: "instagram.comment",
      payload: { text: "hi" },
    });
  });
  it("refuses one without", () => {
    expect(eventSample({ label: "l", payload: [1] })).toBeUndefined();
    expect(eventSample(null)).toBeUndefined();
  });
});

describe("eventTrigger", () => {
  const categories: Record<string, string> = {
    "instagram.comment": "trigger",
    "trigger.webhook": "trigger",
    "trigger.manual": "trigger",
    "trigger.schedule": "trigger",
    "instagram.reply_comment": "action",
  };
  const categoryOf = (kind: string) => categories[kind];
  it("names an Instagram or webhook trigger, which needs an event", () => {
    expect(eventTrigger(["instagram.reply_comment", "instagram.comment"], categoryOf)).toBe("instagram.comment");
    expect(eventTrigger(["trigger.webhook"], categoryOf)).toBe("trigger.webhook");
  });
  it("is undefined for manual and scheduled flows, which run with an empty payload", () => {
    expect(eventTrigger(["trigger.manual", "instagram.reply_comment"], categoryOf)).toBeUndefined();
    expect(eventTrigger(["trigger.schedule"], categoryOf)).toBeUndefined();
    expect(eventTrigger([], categoryOf)).toBeUndefined();
  });
});

describe("parsePayload", () => {
  it("takes a JSON object and refuses anything else in words", () => {
    expect(parsePayload('{"text": "hi"}')).toEqual({ payload: { text: "hi" } });
    expect(parsePayload("[1]")).toEqual({ error: "The payload must be a JSON object." });
    expect("error" in parsePayload("{nope")).toBe(true);
  });
});
