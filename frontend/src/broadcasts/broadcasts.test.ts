import { describe, expect, it } from "vitest";
import { NO_SEGMENT, bytes, share, toSegment } from "./broadcasts";

describe("toSegment", () => {
  it("leaves empty parts out", () => {
    expect(toSegment(NO_SEGMENT, 0)).toEqual({});
  });
  it("splits tags, fields and the seen range", () => {
    const now = Date.UTC(2026, 11, 8);
    const segment = toSegment(
      { tagsAny: "vip, lead ,vip", tagsAll: "", fields: "plan=pro\nnot a field\ncity = Lyon", seenDays: 7, source: "dm" },
      now,
    );
    expect(segment.tags_any).toEqual(["vip", "lead"]);
    expect(segment.tags_all).toBeUndefined();
    expect(segment.fields).toEqual([
      { key: "plan", op: "eq", value: "pro" },
      { key: "city", op: "eq", value: "Lyon" },
    ]);
    expect(segment.seen_after).toBe(new Date(now - 7 * 86_400_000).toISOString());
    expect(segment.sources).toEqual(["dm"]);
  });
});

describe("share and bytes", () => {
  it("is the handled part of the total", () => {
    const progress = { total: 10, handled: 4, sent: 3, failed: 0, skipped: {}, failures: {} };
    expect(share({ total: 10, progress })).toBe(0.4);
    expect(share({ total: null, progress: { ...progress, total: null } })).toBe(0);
  });
  it("counts UTF-8 bytes", () => {
    expect(bytes("é")).toBe(2);
  });
});
