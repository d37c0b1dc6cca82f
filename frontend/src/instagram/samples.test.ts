import { describe, expect, it } from "vitest";
import { instagramTriggerSample, preselected, sampleText, usesInstagram, verdictText } from "./samples";

const categories: Record<string, string> = {
  "trigger.manual": "trigger",
  "instagram.comment": "trigger",
  "instagram.dm": "trigger",
  "instagram.reply_comment": "action",
};
const categoryOf = (kind: string) => categories[kind];

const samples = [
  { kind: "comment", label: "A comment", payload: { text: "How much?" } },
  { kind: "dm", label: "A DM", payload: { text: "Hi" } },
];

describe("instagramTriggerSample", () => {
  it("names the sample kind of the draft's Instagram trigger", () => {
    expect(instagramTriggerSample(["instagram.reply_comment", "instagram.comment"], categoryOf)).toBe("comment");
    expect(instagramTriggerSample(["instagram.dm"], categoryOf)).toBe("dm");
  });
  it("ignores Instagram actions and other triggers", () => {
    expect(instagramTriggerSample(["trigger.manual", "instagram.reply_comment"], categoryOf)).toBeUndefined();
    expect(instagramTriggerSample([], categoryOf)).toBeUndefined();
  });
});

describe("usesInstagram", () => {
  it("is true when any node is an Instagram one", () => {
    expect(usesInstagram(["trigger.manual", "instagram.reply_comment"])).toBe(true);
    expect(usesInstagram(["trigger.manual", "http.request"])).toBe(false);
  });
});

describe("preselected", () => {
  it("picks the sample of the trigger's own kind", () => {
    expect(preselected(samples, "dm")?.label).toBe("A DM");
    expect(preselected(samples, "mention")).toBeUndefined();
    expect(preselected(samples, undefined)).toBeUndefined();
  });
  it("renders the payload as editable JSON", () => {
    expect(JSON.parse(sampleText(samples[0]))).toEqual({ text: "How much?" });
  });
});

describe("verdictText", () => {
  it("gives the reason of a refusal and notes on allowed entries", () => {
    expect(verdictText({ policy_verdict: "refused", policy_reason: "the 24-hour window has closed" })).toBe(
      "refused: the 24-hour window has closed",
    );
    expect(verdictText({ policy_verdict: "refused", policy_reason: null })).toBe("refused");
    expect(verdictText({ policy_verdict: "allowed", policy_reason: null })).toBe("");
    expect(verdictText({ policy_verdict: "allowed", policy_reason: "sent with the HUMAN_AGENT tag" })).toBe(
      "sent with the HUMAN_AGENT tag",
    );
  });
});
