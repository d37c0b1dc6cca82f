// Pure logic of the event log and replays: filters to the events query, outcomes and sends in
// words, and what a refused test run means.
import { ApiError } from "../api/client";

export const OUTCOMES = ["ran", "resumed", "not_run", "pending", "failed"] as const;
export type Outcome = (typeof OUTCOMES)[number];
export const SOURCES = ["instagram", "webhook"] as const;
export const KINDS = [
  "instagram.comment",
  "instagram.dm",
  "instagram.mention",
  "instagram.live_comment",
  "instagram.reaction",
  "instagram.postback",
  "instagram.referral",
  "webhook.request",
] as const;

/** Time windows of the list; `custom` uses the from/to fields. */
export const WINDOWS = { "1h": 3600, "24h": 86400, "7d": 7 * 86400, all: 0, custom: 0 } as const;
export type TimeWindow = keyof typeof WINDOWS;

export interface EventFilters {
  source: string;
  kind: string;
  account: string;
  flow: string;
  outcome: string;
  window: TimeWindow;
  /** `datetime-local` values (the browser's local time), used when `window` is `custom`. */
  from: string;
  to: string;
}

export const NO_FILTERS: EventFilters = { source: "", kind: "", account: "", flow: "", outcome: "", window: "24h", from: "", to: "" };

export interface EventsQuery {
  source?: string[];
  kind?: string;
  account?: string;
  flow_id?: string;
  outcome?: Outcome;
  received_after?: string;
  received_before?: string;
  limit: number;
  offset?: number;
}

/** A `datetime-local` value (local time) as an ISO instant; undefined when empty or invalid. */
export function localToIso(value: string): string | undefined {
  if (!value) return undefined;
  const time = new Date(value).getTime();
  return Number.isNaN(time) ? undefined : new Date(time).toISOString();
}

/** The events query for the chosen filters: empty choices and unknown values are left out. */
export function eventsQuery(filters: EventFilters, now = Date.now(), limit = 50): EventsQuery {
  const query: EventsQuery = { limit };
  if ((SOURCES as readonly string[]).includes(filters.source)) query.source = [filters.source];
  const kind = filters.kind.trim();
  if (kind) query.kind = kind;
  const account = filters.account.trim();
  if (account) query.account = account;
  if (filters.flow) query.flow_id = filters.flow;
  if ((OUTCOMES as readonly string[]).includes(filters.outcome)) query.outcome = filters.outcome as Outcome;
  if (filters.window === "custom") {
    const after = localToIso(filters.from);
    const before = localToIso(filters.to);
    if (after) query.received_after = after;
    if (before) query.received_before = before;
  } else if (WINDOWS[filters.window]) {
    query.received_after = new Date(now - WINDOWS[filters.window] * 1000).toISOString();
  }
  return query;
}

/** An outcome in words. */
export function outcomeText(outcome: string): string {
  return (
    { ran: "ran", resumed: "resumed a waiting run", not_run: "nothing ran", pending: "pending", failed: "dispatch failed" }[
      outcome
    ] ?? outcome
  );
}

/** A value shown as indented JSON ("—" when there is none). */
export function jsonText(value: unknown): string {
  if (value === undefined || value === null) return "—";
  if (typeof value === "string") return value;
  return JSON.stringify(value, null, 2);
}

export interface SendLike {
  node_id: string;
  action: string;
  target: string;
  text?: string | null;
  status: string;
  policy_reason?: string | null;
}

/** One send of a run in words: "reply_comment to 1790…: 'Thanks' (sandboxed)". */
export function sendText(send: SendLike): string {
  const text = send.text ? `: '${send.text}'` : "";
  const reason = send.policy_reason ? `, ${send.policy_reason}` : "";
  return `${send.action} to ${send.target}${text} (${send.status}${reason})`;
}

export interface NodeDiffLike {
  published_status?: string | null;
  draft_status?: string | null;
  change: string;
}

/** How a node changed between the published run and the draft's, in words. */
export function nodeChangeText(diff: NodeDiffLike): string {
  switch (diff.change) {
    case "same":
      return "same";
    case "added":
      return `only in the draft's run (${diff.draft_status ?? "?"})`;
    case "removed":
      return `only in the published run (${diff.published_status ?? "?"})`;
    case "status":
      return `${diff.published_status ?? "—"} → ${diff.draft_status ?? "—"}`;
    case "output":
      return "output changed";
    default:
      return diff.change;
  }
}

/** Why the API refused to test a sample because the draft's trigger would not take it, if it
 * did; undefined for any other failure. */
export function filterRefusal(error: unknown): string | undefined {
  if (!(error instanceof ApiError) || error.code !== "trigger_filter_not_matched") return undefined;
  const reason = error.details.reason;
  return typeof reason === "string" && reason ? reason : error.message;
}

/** A test sample from the event log (`EventDetail.sample`), checked for the fields it needs. */
export function eventSample(sample: unknown): { label: string; kind: string; payload: Record<string, unknown> } | undefined {
  if (!sample || typeof sample !== "object") return undefined;
  const s = sample as Record<string, unknown>;
  if (!s.payload || typeof s.payload !== "object" || Array.isArray(s.payload)) return undefined;
  return {
    label: typeof s.label === "string" ? s.label : "An event",
    kind: typeof s.kind === "string" ? s.kind : "",
    payload: s.payload as Record<string, unknown>,
  };
}

/** A label for an event in a dropdown: its preview, shortened, and when it came. */
export function eventLabel(event: { preview: string; received_at: string }, max = 48): string {
  const preview = event.preview.length > max ? `${event.preview.slice(0, max - 1)}…` : event.preview;
  return `${preview} (${new Date(event.received_at).toLocaleString()})`;
}

/** The trigger kind of a graph when a run of it needs an event to start from (an Instagram or
 * webhook trigger: an empty payload would give its nodes nothing to read); else undefined. */
export function eventTrigger(
  kinds: readonly string[],
  categoryOf: (kind: string) => string | undefined,
): string | undefined {
  const trigger = kinds.find((kind) => categoryOf(kind) === "trigger");
  if (!trigger) return undefined;
  return trigger.startsWith("instagram.") || trigger === "trigger.webhook" ? trigger : undefined;
}

/** A JSON text as a run's payload: the object, or why it is not one. */
export function parsePayload(text: string): { payload: Record<string, unknown> } | { error: string } {
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) return { payload: parsed as Record<string, unknown> };
    return { error: "The payload must be a JSON object." };
  } catch (error) {
    return { error: error instanceof Error ? error.message : "The payload is not JSON." };
  }
}
