import { describe, expect, it } from "vitest";
import { byDay, dayKey, gridRange, monthGrid, movable, movedTo, postNote } from "./month";

describe("month grid", () => {
  it("covers the month in whole weeks starting on Monday", () => {
    const weeks = monthGrid(2026, 11); // December 2026 starts on a Tuesday
    expect(weeks[0][0].getDay()).toBe(1);
    expect(dayKey(weeks[0][0])).toBe("2026-11-30");
    expect(dayKey(weeks[0][1])).toBe("2026-12-01");
    const days = weeks.flat().map(dayKey);
    expect(days).toContain("2026-12-31");
    expect(weeks.every((w) => w.length === 7)).toBe(true);
    expect(weeks.length).toBe(5);
  });

  it("asks the API for the grid's days", () => {
    const weeks = monthGrid(2027, 1);
    const { start, end } = gridRange(weeks);
    expect(new Date(start).getTime()).toBe(weeks[0][0].getTime());
    expect(new Date(end).getTime()).toBeGreaterThan(weeks[weeks.length - 1][6].getTime());
  });
});

describe("posts on days", () => {
  const at = (d: number, h: number) => new Date(2026, 11, d, h, 30).toISOString();

  it("groups scheduled posts by local day in time order and leaves drafts out", () => {
    const days = byDay([
      { id: "b", status: "scheduled", scheduled_at: at(5, 18) },
      { id: "a", status: "published", scheduled_at: at(5, 9) },
      { id: "c", status: "draft", scheduled_at: null },
    ]);
    expect(days.get("2026-12-05")?.map((p) => p.id)).toEqual(["a", "b"]);
    expect([...days.keys()]).toEqual(["2026-12-05"]);
  });

  it("keeps the time of day when a post is dragged to another day", () => {
    const moved = new Date(movedTo({ id: "a", status: "scheduled", scheduled_at: at(5, 18) }, new Date(2026, 11, 9)));
    expect([moved.getDate(), moved.getHours(), moved.getMinutes()]).toEqual([9, 18, 30]);
    const draft = new Date(movedTo({ id: "d", status: "draft" }, new Date(2026, 11, 9)));
    expect([draft.getDate(), draft.getHours()]).toEqual([9, 9]);
  });

  it("moves only what is not published or publishing, and says why a post is stuck", () => {
    expect(movable({ id: "x", status: "published" })).toBe(false);
    expect(movable({ id: "x", status: "publishing" })).toBe(false);
    expect(movable({ id: "x", status: "failed" })).toBe(true);
    expect(postNote({ id: "x", status: "failed", error: "the image format" })).toBe("the image format");
    expect(postNote({ id: "x", status: "scheduled", waiting_reason: "quota" })).toBe("quota");
    expect(postNote({ id: "x", status: "draft", problems: [{ message: "too wide" }] })).toBe("too wide");
  });
});
