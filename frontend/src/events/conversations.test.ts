import { describe, expect, it } from "vitest";
import { keywordList } from "./conversations";

describe("keywordList", () => {
  it("splits on commas and lines, trims and drops blanks", () => {
    expect(keywordList(" stop, unsubscribe \n\n,  ")).toEqual(["stop", "unsubscribe"]);
    expect(keywordList("")).toEqual([]);
  });
});
