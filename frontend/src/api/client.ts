// Typed API client (openapi-fetch over the generated schema) with the CSRF double submit.
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type Flow = Schemas["FlowRead"];
export type FlowSummary = Schemas["FlowSummary"];
export type GraphSpec = Schemas["GraphSpec"];
export type NodeSpec = Schemas["NodeSpec"];
export type EdgeSpec = Schemas["EdgeSpec"];
export type NodeDescription = Schemas["NodeDescription"];
export type Execution = Schemas["ExecutionRead"];
export type ExecutionSummary = Schemas["ExecutionSummaryRead"];
export type Workspace = Schemas["WorkspaceRead"];
export type Role = Schemas["Role"];
export type GraphProblem = Schemas["GraphProblem"];
export type KnowledgeBase = Schemas["KnowledgeBaseRead"];
export type KnowledgeDocument = Schemas["DocumentRead"];
export type SearchHit = Schemas["SearchHit"];
export type SampleEvent = Schemas["SampleEvent"];
export type OutboxEntry = Schemas["OutboxRead"];
export type Post = Schemas["PostRead"];
export type PostMedia = Schemas["MediaRead"];

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** The value of a readable cookie, if set. */
export function cookie(name: string): string | undefined {
  const hit = document.cookie.split("; ").find((part) => part.startsWith(`${name}=`));
  return hit ? decodeURIComponent(hit.slice(name.length + 1)) : undefined;
}

/** The CSRF double-submit header a cookie-authenticated write needs: the readable `sf_csrf`
 * cookie echoed as `X-CSRF-Token` (empty for safe methods or before the cookie is set). */
export function csrfHeaders(method: string): Record<string, string> {
  const token = cookie("sf_csrf");
  return UNSAFE.has(method.toUpperCase()) && token ? { "X-CSRF-Token": token } : {};
}

const csrf: Middleware = {
  onRequest({ request }) {
    for (const [name, value] of Object.entries(csrfHeaders(request.method))) request.headers.set(name, value);
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: "", credentials: "same-origin" });
api.use(csrf);

/** An API failure with the server's `{code, message, details}` in words. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** Human words for any error body the API can send (`{code, message, details}`). */
export function describeError(status: number, body: unknown): ApiError {
  if (body && typeof body === "object") {
    const b = body as Record<string, unknown>;
    if (typeof b.message === "string") {
      const code = String(b.code ?? "error");
      const details = (b.details as Record<string, unknown>) ?? {};
      return new ApiError(status, code, KNOWN[code] ?? b.message, details);
    }
  }
  if (status === 0) return new ApiError(0, "network", "The server could not be reached.");
  return new ApiError(status, "http_error", `The server answered ${status}.`);
}

const KNOWN: Record<string, string> = {
  register_user_already_exists: "An account with this email already exists.",
  login_bad_credentials: "Wrong email or password.",
  reset_password_bad_token: "This reset link is invalid or has expired.",
};

/** Unwraps an openapi-fetch result: the data, or throws an `ApiError` in words. */
export function ok<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.error !== undefined || !result.response.ok) {
    throw describeError(result.response.status, result.error);
  }
  return result.data as T;
}

/** The message of any thrown value, never a stack. */
export function errorText(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof TypeError) return "The server could not be reached.";
  if (error instanceof Error) return error.message;
  return "Something went wrong.";
}
