// Node icons: the palette's icon names drawn as symbols (no icon font, nothing fetched).
// glyphs every common system font has (no emoji font is assumed)
const ICONS: Record<string, string> = {
  play: "▶",
  clock: "◷",
  webhook: "⚓",
  globe: "◍",
  pencil: "✎",
  "git-branch": "◇",
  hourglass: "◔",
  octagon: "■",
  split: "⇶",
  instagram: "◎",
  bot: "◉",
  brain: "✱",
  book: "▤",
  message: "✉",
  user: "☺",
};

export function iconFor(name: string): string {
  return ICONS[name] ?? "◆";
}
