import { describe, expect, it } from "vitest";
import { TAKEOVER_CHOICES, takeoverText } from "./Takeover";

describe("takeover", () => {
  it("says whether flows answer the contact and until when", () => {
    expect(takeoverText({ taken_over: false, takeover_until: null })).toMatch(/^on/);
    expect(takeoverText({ taken_over: true, takeover_until: null })).toContain("until released");
    expect(takeoverText({ taken_over: true, takeover_until: "2030-01-02T03:04:00Z" })).toContain("2030");
  });

  it("offers durations the API takes (1 minute to 30 days, or until released)", () => {
    for (const c of TAKEOVER_CHOICES) {
      if (c.minutes !== null) expect(c.minutes >= 1 && c.minutes <= 30 * 24 * 60).toBe(true);
    }
    expect(TAKEOVER_CHOICES.some((c) => c.minutes === null)).toBe(true);
  });
});
