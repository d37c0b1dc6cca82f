import { describe, expect, it } from "vitest";
import { ledgerQuery, textPreview, tokenAdvice } from "./ledger";

describe("ledgerQuery", () => {
  it("leaves out empty filters", () => {
    expect(ledgerQuery({ account: "", flow: "", status: "" })).toEqual({ limit: 50 });
  });
  it("maps each chosen filter to its parameter", () => {
    expect(ledgerQuery({ account: "a1", flow: "f1", status: "sandboxed" }, 20)).toEqual({
      account_id: "a1",
      flow_id: "f1",
      status: "sandboxed",
      limit: 20,
    });
  });
  it("drops a status the API does not know", () => {
    expect(ledgerQuery({ account: "", flow: "", status: "bogus" })).toEqual({ limit: 50 });
  });
});

describe("tokenAdvice", () => {
  it("asks to reconnect expired and revoked tokens only", () => {
    expect(tokenAdvice("valid").reconnect).toBe(false);
    expect(tokenAdvice("expiring").reconnect).toBe(false);
    expect(tokenAdvice("expired").reconnect).toBe(true);
    expect(tokenAdvice("revoked").text).toMatch(/reconnect/i);
  });
});

describe("textPreview", () => {
  it("shortens long messages", () => {
    expect(textPreview({ message: "x".repeat(100) }, 10)).toBe(`${"x".repeat(9)}…`);
    expect(textPreview({ message: "hi" })).toBe("hi");
    expect(textPreview({})).toBe("");
  });
});

describe("tokenAdvice for Facebook Login accounts", () => {
  it("says a Page token does not expire", () => {
    expect(tokenAdvice("valid", "facebook")).toEqual({
      text: "Page token; it does not expire and is checked daily.",
      reconnect: false,
    });
  });
  it("asks to reconnect with Facebook when the Page token is revoked", () => {
    const advice = tokenAdvice("revoked", "facebook");
    expect(advice.reconnect).toBe(true);
    expect(advice.text).toContain("reconnect with Facebook");
  });
  it("keeps the Instagram wording for Instagram Login accounts", () => {
    expect(tokenAdvice("valid").text).toContain("refreshed automatically");
  });
});
