import { describe, expect, it } from "vitest";
import { ellipsize, markupParts, plainText } from "./markup";

describe("markupParts", () => {
  it("turns double- and single-backtick spans into code parts", () => {
    expect(markupParts("Only when ``true``; see `trigger.text` here")).toEqual([
      { code: false, text: "Only when " },
      { code: true, text: "true" },
      { code: false, text: "; see " },
      { code: true, text: "trigger.text" },
      { code: false, text: " here" },
    ]);
  });
  it("keeps text without spans whole, and an unclosed tick as text", () => {
    expect(markupParts("plain")).toEqual([{ code: false, text: "plain" }]);
    expect(markupParts("a ``b")).toEqual([{ code: false, text: "a ``b" }]);
    expect(markupParts("")).toEqual([]);
  });
  it("never leaves literal double backticks around a code span", () => {
    expect(plainText("``true`` or ``false``")).toBe("true or false");
  });
});

describe("ellipsize", () => {
  it("ends a cut name in an ellipsis and keeps a short one", () => {
    expect(ellipsize("Comment auto-reply for the spring sale", 18)).toBe("Comment auto-repl…");
    expect(ellipsize("Comment auto-reply for the spring sale", 18)).toHaveLength(18);
    expect(ellipsize("Short", 18)).toBe("Short");
  });
});

describe("Markup", () => {
  it("renders code spans as <code>, with no literal backticks left", async () => {
    const { createElement } = await import("react");
    const { renderToStaticMarkup } = await import("react-dom/server");
    const { Markup } = await import("./Markup");
    const html = renderToStaticMarkup(createElement(Markup, { text: "Stop when ``true``, <b>not</b> HTML" }));
    expect(html).toBe("<span>Stop when </span><code>true</code><span>, &lt;b&gt;not&lt;/b&gt; HTML</span>");
  });
});
