// Pure logic of the contacts page and profile: filters to the API query and the export link,
// tag lists typed by people, field values typed into inputs, the window and timeline in words.
import type { Schemas } from "../api/client";

export type Contact = Schemas["ContactRead"];
export type ContactDetail = Schemas["ContactDetail"];
export type ContactField = Schemas["ContactFieldRead"];
export type TimelineItem = Schemas["TimelineItem"];

export const SOURCES = ["comment", "live_comment", "dm", "story_reply", "story_mention", "postback", "referral", "ad"] as const;
export type Source = (typeof SOURCES)[number];

/** Last-seen ranges of the list; `any` sets no bound. */
export const SEEN = { any: 0, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400 } as const;
export type Seen = keyof typeof SEEN;

export interface ContactFilters {
  q: string;
  tag: string;
  /** `key=value` of a custom field. */
  field: string;
  source: string;
  seen: Seen;
  window: "" | "open" | "closed";
}

export const NO_FILTERS: ContactFilters = { q: "", tag: "", field: "", source: "", seen: "any", window: "" };

export interface ContactsQuery {
  q?: string;
  tag?: string[];
  field?: string[];
  source?: Source[];
  seen_after?: string;
  window?: "open" | "closed";
  limit?: number;
  offset?: number;
}

/** The contacts query for the chosen filters: empty and unknown choices are left out. */
export function contactsQuery(filters: ContactFilters, now = Date.now(), limit?: number, offset?: number): ContactsQuery {
  const query: ContactsQuery = {};
  const q = filters.q.trim().slice(0, 100);
  if (q) query.q = q;
  const tags = parseTags(filters.tag);
  if (tags.length) query.tag = tags;
  const field = filters.field.trim();
  if (/^[a-z][a-z0-9_]{0,39}=/.test(field)) query.field = [field];
  if ((SOURCES as readonly string[]).includes(filters.source)) query.source = [filters.source as Source];
  const span = SEEN[filters.seen] ?? 0;
  if (span) query.seen_after = new Date(now - span * 1000).toISOString();
  if (filters.window === "open" || filters.window === "closed") query.window = filters.window;
  if (limit !== undefined) query.limit = limit;
  if (offset) query.offset = offset;
  return query;
}

/** The CSV export URL for the same filters (a plain link: the browser downloads it). */
export function exportUrl(workspaceId: string, filters: ContactFilters, now = Date.now()): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(contactsQuery(filters, now))) {
    for (const item of Array.isArray(value) ? value : [value]) params.append(key, String(item));
  }
  const search = params.toString();
  return `/api/workspaces/${encodeURIComponent(workspaceId)}/contacts/export${search ? `?${search}` : ""}`;
}

/** Tags typed as "lead, vip ,, lead": trimmed, without empties and repeats, in typed order. */
export function parseTags(text: string): string[] {
  const seen = new Set<string>();
  for (const part of text.split(",")) {
    const tag = part.trim();
    if (tag && tag.length <= 60) seen.add(tag);
  }
  return [...seen];
}

/** A field value typed into an input, as the API takes it: null clears, booleans and numbers
 * keep their type; anything else is sent as typed and the server checks it by type. */
export function fieldInput(type: string, text: string): unknown {
  const value = text.trim();
  if (!value) return null;
  if (type === "boolean") {
    if (["true", "yes", "1", "on"].includes(value.toLowerCase())) return true;
    if (["false", "no", "0", "off"].includes(value.toLowerCase())) return false;
    return value;
  }
  if (type === "number" && /^[+-]?\d+(\.\d+)?$/.test(value)) return Number(value);
  return value;
}

/** A stored field value as input text. */
export function fieldText(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "boolean") return value ? "true" : "false";
  return String(value);
}

/** The input type a browser offers for a field type. */
export function inputType(type: string): string {
  return ({ number: "number", date: "date", email: "email", url: "url", phone: "tel" } as Record<string, string>)[type] ?? "text";
}

/** Meta's 24-hour window in words: "open, 3 h left", "closed". */
export function windowText(window: { open: boolean; expires_at?: string | null }, now = Date.now()): string {
  if (!window.open || !window.expires_at) return "closed";
  const left = Math.max(0, Date.parse(window.expires_at) - now) / 1000;
  if (left < 3600) return `open, ${Math.max(1, Math.round(left / 60))} min left`;
  return `open, ${Math.round(left / 3600)} h left`;
}

/** Who the contact is, in one line: "Ann Smith (@ann)", "@ann", or their id. */
export function displayName(contact: Pick<Contact, "name" | "username" | "igsid">): string {
  if (contact.name && contact.username) return `${contact.name} (@${contact.username})`;
  if (contact.username) return `@${contact.username}`;
  return contact.name || `Instagram user ${contact.igsid}`;
}

const SOURCE_WORDS: Record<string, string> = {
  comment: "Comment",
  live_comment: "Live comment",
  dm: "Direct message",
  story_reply: "Story reply",
  story_mention: "Story mention",
  postback: "Button or menu",
  referral: "Link",
  ad: "Ad",
};

/** How the person first came, in words. */
export function sourceText(source: string): string {
  return SOURCE_WORDS[source] ?? source;
}

/** One timeline entry in words: what happened, and the text when there is one. */
export function timelineText(item: TimelineItem): string {
  const text = item.text ? `: ${item.text}` : "";
  if (item.type === "event") return `${item.kind.replace(/^instagram\./, "").replace(/_/g, " ")} received${text}`;
  if (item.type === "run") return `ran flow ${item.kind} (${item.status ?? "queued"})`;
  return `${item.kind.replace(/_/g, " ")} ${item.status ?? ""}${text}`.replace(/\s+:/, ":");
}

/** Which ids are selected after toggling one (or all of a page). */
export function toggle(selected: ReadonlySet<string>, ids: string[], on: boolean): Set<string> {
  const next = new Set(selected);
  for (const id of ids) {
    if (on) next.add(id);
    else next.delete(id);
  }
  return next;
}
