// Pure logic of the broadcasts page: the segment builder's form to the API's segment, reasons
// in words, and progress as a share.
import type { Schemas } from "../api/client";

export type Broadcast = Schemas["BroadcastRead"];
export type BroadcastDetail = Schemas["BroadcastDetail"];
export type Preview = Schemas["Preview"];
export type Segment = Schemas["Segment"];

export interface SegmentForm {
  /** Comma-separated tag names. */
  tagsAny: string;
  tagsAll: string;
  /** `key=value` lines: each field must equal its value. */
  fields: string;
  seenDays: number;
  source: string;
}

export const NO_SEGMENT: SegmentForm = { tagsAny: "", tagsAll: "", fields: "", seenDays: 0, source: "" };

export const REASON_TEXT: Record<string, string> = {
  opted_out: "Opted out",
  never_messaged: "Never messaged the account",
  human_agent_only: "Last message 24 h to 7 days ago (a person only)",
  outside_window: "Last message over 7 days ago",
};

const names = (text: string) =>
  [...new Set(text.split(",").map((t) => t.trim()).filter((t) => t.length > 0))];

/** The API segment for the builder's form; empty parts are left out. */
export function toSegment(form: SegmentForm, now: number): Segment {
  const segment: Segment = {};
  const any = names(form.tagsAny);
  const all = names(form.tagsAll);
  if (any.length) segment.tags_any = any;
  if (all.length) segment.tags_all = all;
  const fields = form.fields
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.includes("="))
    .map((line) => {
      const at = line.indexOf("=");
      return { key: line.slice(0, at).trim(), op: "eq" as const, value: line.slice(at + 1).trim() };
    });
  if (fields.length) segment.fields = fields;
  if (form.seenDays > 0) segment.seen_after = new Date(now - form.seenDays * 86_400_000).toISOString();
  if (form.source) segment.sources = [form.source as NonNullable<Segment["sources"]>[number]];
  return segment;
}

/** How far a broadcast has got, 0 to 1 (0 while its total is unknown). */
export function share(detail: Pick<BroadcastDetail, "total" | "progress">): number {
  const total = detail.total ?? detail.progress.total ?? 0;
  return total > 0 ? Math.min(1, detail.progress.handled / total) : 0;
}

/** UTF-8 size of a message, as Instagram counts its 1000-byte limit. */
export function bytes(text: string): number {
  return new TextEncoder().encode(text).length;
}
