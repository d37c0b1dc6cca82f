// Pure logic of the conversations page.

/** The keywords typed in one field, comma- or line-separated: trimmed, blanks dropped. */
export function keywordList(text: string): string[] {
  return text
    .split(/[,\n]/)
    .map((k) => k.trim())
    .filter((k) => k.length > 0);
}
