import { describe, expect, it } from "vitest";
import { iceBreakerLines, menuLines, parseIceBreakers, parseMenu } from "./entryPoints";

describe("entry points as lines", () => {
  it("reads ice breakers and gives the same lines back", () => {
    const items = parseIceBreakers(" Prices? | PRICES \n\nWhere | is | WHERE");
    expect(items).toEqual([
      { question: "Prices?", payload: "PRICES" },
      { question: "Where | is", payload: "WHERE" },
    ]);
    expect(parseIceBreakers(iceBreakerLines(items))).toEqual(items);
  });

  it("tells links from postbacks in the menu", () => {
    const items = parseMenu("Shop | https://shop.example.com\nTalk to us | HUMAN\nNo target");
    expect(items).toEqual([
      { type: "web_url", title: "Shop", url: "https://shop.example.com" },
      { type: "postback", title: "Talk to us", payload: "HUMAN" },
      { type: "postback", title: "No target", payload: "" },
    ]);
    expect(parseMenu(menuLines(items))).toEqual(items);
  });
});
