/** What the connect landing page says: an attempt's outcome, or why the link itself was refused. */

export type LoginKind = "instagram" | "facebook";

export interface ConnectOutcome {
  status: string;
  login_kind: string;
  accounts: { id: string; ig_user_id: string; username: string }[];
  error_code?: string | null;
  error_message?: string | null;
}

export interface ConnectMessage {
  tone: "ok" | "error" | "waiting";
  title: string;
  text: string;
}

/** The login a kind names, in words. */
export function loginName(kind: string): string {
  return kind === "facebook" ? "Facebook Login" : "Instagram Login";
}

/** Titles for the errors the API names; anything else shows the API's own message. */
const TITLES: Record<string, string> = {
  user_denied: "Connection cancelled",
  facebook_permission_missing: "A permission is missing",
  facebook_no_pages: "No Facebook Page shared",
  facebook_no_instagram_account: "No Instagram account on the Page",
  meta_unreachable: "Meta could not be reached",
  not_admin: "Only admins can connect accounts",
};

/** The landing page's message for a finished (or still running) connect attempt. */
export function attemptMessage(attempt: ConnectOutcome): ConnectMessage {
  if (attempt.status === "connected") {
    const names = attempt.accounts.map((a) => `@${a.username || a.ig_user_id}`);
    return {
      tone: "ok",
      title: `Connected ${names.join(", ")}`,
      text:
        `${loginName(attempt.login_kind)} connected ${names.length === 1 ? "the account" : `${names.length} accounts`}. ` +
        "New accounts start in sandbox mode: actions are recorded, never sent, until you go live.",
    };
  }
  if (attempt.status === "failed") {
    return {
      tone: "error",
      title: TITLES[attempt.error_code ?? ""] ?? "The account was not connected",
      text: attempt.error_message || "Meta did not connect the account; try again.",
    };
  }
  return { tone: "waiting", title: "Connecting…", text: "Meta is still answering; this page updates by itself." };
}

/** The only errors a link without an attempt can carry; the text never comes from the URL. */
const LINK_ERRORS: Record<string, string> = {
  state_invalid: "The connect link was altered or is not one Socialflow made. Start connecting again from the Instagram page.",
  state_expired: "The connect link expired (links last 15 minutes). Start connecting again from the Instagram page.",
  state_used: "This connect link was already used. Each link connects once; start again from the Instagram page.",
};

/** The landing page's message when the callback refused the link itself. */
export function linkErrorMessage(code: string | null): ConnectMessage {
  return {
    tone: "error",
    title: "The account was not connected",
    text: LINK_ERRORS[code ?? ""] ?? LINK_ERRORS.state_invalid,
  };
}
