// Pure logic of a knowledge base's document table: when to poll, sizes, types and progress in
// words.

export interface DocumentLike {
  filename: string;
  content_type: string;
  status: string;
  chunks_total: number;
  chunks_done: number;
}

/** How often the document list is fetched again while ingestion is under way. */
export const POLL_MS = 1500;

const WORKING = new Set(["pending", "processing"]);

/** Whether a document still waits for or goes through ingestion. */
export function inProgress(document: DocumentLike): boolean {
  return WORKING.has(document.status);
}

/** TanStack Query's `refetchInterval` for the document list: poll while any document is pending
 * or processing, stop once none is. */
export function pollInterval(documents: readonly DocumentLike[] | undefined, every = POLL_MS): number | false {
  return documents?.some(inProgress) ? every : false;
}

/** Bytes in the units people read: 912 B, 14.2 kB, 3.1 MB (powers of 1000, like file managers). */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return "—";
  if (bytes < 1000) return `${bytes} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = -1;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

const TYPES: Record<string, string> = {
  "application/pdf": "PDF",
  "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "Word",
  "text/html": "HTML",
  "text/csv": "CSV",
  "text/markdown": "Markdown",
  "text/plain": "Text",
};

/** A short type name for a document: from its stored content type, else its extension. */
export function documentType(document: Pick<DocumentLike, "content_type" | "filename">): string {
  const known = TYPES[document.content_type.split(";")[0].trim().toLowerCase()];
  if (known) return known;
  const dot = document.filename.lastIndexOf(".");
  return dot > 0 ? document.filename.slice(dot + 1).toUpperCase() : document.content_type || "—";
}

/** "1 document", "3 documents". */
export function counted(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** The chunks column: the count once ready, progress while processing, nothing otherwise. */
export function chunksText(document: DocumentLike): string {
  if (document.status === "ready") return counted(document.chunks_total, "chunk");
  if (document.status === "processing" && document.chunks_total > 0) {
    return `${document.chunks_done} of ${document.chunks_total} embedded`;
  }
  return "";
}

/** A search score for people: RRF scores are small, so three significant digits. */
export function formatScore(score: number): string {
  return Number.isFinite(score) ? score.toPrecision(3) : "—";
}
