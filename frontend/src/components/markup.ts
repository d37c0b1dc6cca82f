// The little markup of node and field descriptions (Python docstring style): ``code`` and `code`
// spans. Everything else stays text; nothing is ever parsed as HTML.

export interface MarkupPart {
  code: boolean;
  text: string;
}

const SPAN = /``(.+?)``|`([^`]+)`/g;

/** A description split into plain text and code spans, in order. */
export function markupParts(text: string): MarkupPart[] {
  const parts: MarkupPart[] = [];
  let at = 0;
  for (const match of text.matchAll(SPAN)) {
    const start = match.index ?? 0;
    if (start > at) parts.push({ code: false, text: text.slice(at, start) });
    parts.push({ code: true, text: match[1] ?? match[2] ?? "" });
    at = start + match[0].length;
  }
  if (at < text.length) parts.push({ code: false, text: text.slice(at) });
  return parts;
}

/** A description as plain text (for `title` tooltips): the code spans without their ticks. */
export function plainText(text: string): string {
  return markupParts(text)
    .map((part) => part.text)
    .join("");
}

/** A name cut to `max` characters, ending in an ellipsis when cut. */
export function ellipsize(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, Math.max(0, max - 1))}…` : text;
}
