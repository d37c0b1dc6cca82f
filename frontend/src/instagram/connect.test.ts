import { describe, expect, it } from "vitest";
import { attemptMessage, linkErrorMessage, loginName } from "./connect";

const base = { login_kind: "facebook", accounts: [], error_code: null, error_message: null };

describe("attemptMessage", () => {
  it("names the accounts connected", () => {
    const m = attemptMessage({
      ...base,
      status: "connected",
      accounts: [{ id: "a", ig_user_id: "1784", username: "bakery" }],
    });
    expect(m.tone).toBe("ok");
    expect(m.title).toBe("Connected @bakery");
    expect(m.text).toContain("Facebook Login connected the account");
  });
  it("counts several accounts and falls back to the id without a username", () => {
    const m = attemptMessage({
      ...base,
      status: "connected",
      accounts: [
        { id: "a", ig_user_id: "1", username: "one" },
        { id: "b", ig_user_id: "2", username: "" },
      ],
    });
    expect(m.title).toBe("Connected @one, @2");
    expect(m.text).toContain("2 accounts");
  });
  it("titles known errors and shows the API's words", () => {
    const m = attemptMessage({
      ...base,
      status: "failed",
      error_code: "facebook_permission_missing",
      error_message: "Facebook did not grant pages_messaging",
    });
    expect(m).toEqual({ tone: "error", title: "A permission is missing", text: "Facebook did not grant pages_messaging" });
  });
  it("keeps a generic title for an unknown error", () => {
    const m = attemptMessage({ ...base, status: "failed", error_code: "graph_100", error_message: "bad code" });
    expect(m.title).toBe("The account was not connected");
  });
  it("waits while the attempt is under way", () => {
    expect(attemptMessage({ ...base, status: "working" }).tone).toBe("waiting");
  });
});

describe("linkErrorMessage", () => {
  it("explains a replayed link", () => {
    expect(linkErrorMessage("state_used").text).toContain("already used");
  });
  it("never shows text from the URL", () => {
    const m = linkErrorMessage("<img src=x onerror=alert(1)>");
    expect(m.text).not.toContain("<img");
    expect(m.text).toContain("altered");
  });
});

describe("loginName", () => {
  it("names both logins", () => {
    expect(loginName("facebook")).toBe("Facebook Login");
    expect(loginName("instagram")).toBe("Instagram Login");
  });
});
