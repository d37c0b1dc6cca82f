import { describe, expect, it } from "vitest";
import { costText, formatCost, nodeUsageText, tokensText } from "./runUsage";

const usage = (calls: number, cost_usd: number, unpriced_calls = 0) => ({
  calls,
  input_tokens: 1000 * calls,
  output_tokens: 234 * calls,
  total_tokens: 1234 * calls,
  cost_usd,
  unpriced_calls,
});

describe("run usage in words", () => {
  it("formats dollars at a precision that fits their size", () => {
    expect(formatCost(0)).toBe("$0");
    expect(formatCost(12.345)).toBe("$12.35");
    expect(formatCost(0.0312)).toBe("$0.0312");
    expect(formatCost(0.00029166)).toBe("$0.00029");
    expect(formatCost(0.000001)).toBe("$0.000001");
    expect(formatCost(1e-9)).toBe("< $0.000001");
  });

  it("shows a cost only when something was spent, and marks unknown prices", () => {
    expect(costText(null)).toBe("");
    expect(costText(usage(0, 0))).toBe("");
    expect(costText(usage(2, 0.0005))).toBe("$0.0005");
    expect(costText(usage(2, 0, 2))).toBe("?");
    expect(costText(usage(3, 0.0005, 1))).toBe("$0.0005 + ?");
  });

  it("counts calls and tokens for the run, and tokens and cost per AI node", () => {
    expect(tokensText(usage(2, 0.0005))).toBe("2 calls · 2,468 tokens (2,000 in / 468 out)");
    expect(tokensText(usage(1, 0))).toBe("1 call · 1,234 tokens (1,000 in / 234 out)");
    expect(tokensText(undefined)).toBe("");
    expect(nodeUsageText({ ...usage(1, 0.0002), provider: "openai", model: "gpt-4o-mini" })).toBe("1,234 tokens · $0.0002");
    expect(nodeUsageText({ ...usage(1, 0), provider: "ollama" })).toBe("1,234 tokens");
    expect(nodeUsageText(null)).toBe("");
  });
});
