// Pure logic of the Instagram page: ledger filters to a query, token status in words.

export const LEDGER_STATUSES = ["queued", "sending", "sent", "sandboxed", "refused", "failed"] as const;
export type LedgerStatus = (typeof LEDGER_STATUSES)[number];

export interface LedgerFilters {
  account: string;
  flow: string;
  status: string;
}

export interface LedgerQuery {
  account_id?: string;
  flow_id?: string;
  status?: LedgerStatus;
  limit: number;
}

/** The outbox query for the chosen filters: empty choices are left out, unknown statuses too. */
export function ledgerQuery(filters: LedgerFilters, limit = 50): LedgerQuery {
  const query: LedgerQuery = { limit };
  if (filters.account) query.account_id = filters.account;
  if (filters.flow) query.flow_id = filters.flow;
  if ((LEDGER_STATUSES as readonly string[]).includes(filters.status)) query.status = filters.status as LedgerStatus;
  return query;
}

/** What a token status means for the admin, and whether the account must be reconnected. */
export function tokenAdvice(status: string, loginKind = "instagram"): { text: string; reconnect: boolean } {
  if (loginKind === "facebook") {
    // Page tokens from a long-lived user token do not expire; they stop working when revoked
    if (status === "valid") return { text: "Page token; it does not expire and is checked daily.", reconnect: false };
    if (status === "revoked")
      return { text: "Facebook no longer accepts the Page token: reconnect with Facebook.", reconnect: true };
  }
  switch (status) {
    case "valid":
      return { text: "Token valid; refreshed automatically.", reconnect: false };
    case "expiring":
      return { text: "Token expires soon; it is refreshed automatically.", reconnect: false };
    case "expired":
      return { text: "Token expired: nothing can be sent. Reconnect the account.", reconnect: true };
    case "revoked":
      return { text: "Access was revoked on Instagram: reconnect the account.", reconnect: true };
    default:
      return { text: `Token ${status}: reconnect the account.`, reconnect: true };
  }
}

/** The text an action sends, shortened for a table cell. */
export function textPreview(payload: Record<string, unknown>, max = 80): string {
  const raw = payload.message ?? payload.text ?? payload.reply ?? "";
  const text = typeof raw === "string" ? raw : JSON.stringify(raw);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
