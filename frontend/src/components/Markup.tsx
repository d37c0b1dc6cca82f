import { markupParts } from "./markup";

/** A description with its ``code`` spans rendered as <code>. */
export function Markup({ text }: { text: string }) {
  return (
    <>
      {markupParts(text).map((part, i) => (part.code ? <code key={i}>{part.text}</code> : <span key={i}>{part.text}</span>))}
    </>
  );
}
