// Pure logic of an account's entry points: ice breakers and the persistent menu as lines of
// text ("question | PAYLOAD", "title | PAYLOAD or https://url").

export interface IceBreakerItem {
  question: string;
  payload: string;
}

export interface MenuEntry {
  type: "web_url" | "postback";
  title: string;
  url?: string | null;
  payload?: string | null;
}

function pairs(text: string): [string, string][] {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .map((line) => {
      const at = line.lastIndexOf("|");
      return at < 0 ? [line, ""] : [line.slice(0, at).trim(), line.slice(at + 1).trim()];
    });
}

/** Ice breakers typed one per line as `question | PAYLOAD`. */
export function parseIceBreakers(text: string): IceBreakerItem[] {
  return pairs(text).map(([question, payload]) => ({ question, payload }));
}

/** Menu items typed one per line as `title | PAYLOAD` or `title | https://…` (a link). */
export function parseMenu(text: string): MenuEntry[] {
  return pairs(text).map(([title, target]) =>
    /^https?:\/\//i.test(target) ? { type: "web_url", title, url: target } : { type: "postback", title, payload: target },
  );
}

/** The lines that give back these ice breakers. */
export function iceBreakerLines(items: IceBreakerItem[]): string {
  return items.map((i) => `${i.question} | ${i.payload}`).join("\n");
}

/** The lines that give back these menu items. */
export function menuLines(items: MenuEntry[]): string {
  return items.map((i) => `${i.title} | ${i.type === "web_url" ? i.url ?? "" : i.payload ?? ""}`).join("\n");
}
