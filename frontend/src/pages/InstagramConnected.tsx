import type { ReactNode } from "react";
import { useQuery } from "@tanstack/react-query";
import { Link, useSearchParams } from "react-router-dom";
import { api, ok } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { attemptMessage, linkErrorMessage, type ConnectMessage } from "../instagram/connect";
import { useWorkspace } from "../state";

function Outcome({ message, children }: { message: ConnectMessage; children?: ReactNode }) {
  return (
    <div role={message.tone === "error" ? "alert" : "status"} aria-label="Connection result" data-tone={message.tone}>
      <h2>{message.title}</h2>
      <p className={message.tone === "error" ? "error" : undefined}>{message.text}</p>
      {children}
    </div>
  );
}

/** Where Instagram Login and Facebook Login send the browser back: connected, or why not. */
export function InstagramConnected() {
  const { id: ws } = useWorkspace();
  const [search] = useSearchParams();
  const attemptId = search.get("attempt") ?? "";
  const attempt = useQuery({
    queryKey: ["ig-connect-attempt", ws, attemptId],
    enabled: attemptId !== "",
    queryFn: async () =>
      ok(
        await api.GET("/api/workspaces/{workspace_id}/instagram/connect/attempts/{attempt_id}", {
          params: { path: { workspace_id: ws, attempt_id: attemptId } },
        }),
      ),
    refetchInterval: (query) => (["pending", "working"].includes(query.state.data?.status ?? "") ? 1000 : false),
  });
  return (
    <section className="page">
      <h1>Instagram</h1>
      {attemptId === "" && <Outcome message={linkErrorMessage(search.get("error"))} />}
      <ErrorNote error={attempt.error} />
      {attempt.data && <Outcome message={attemptMessage(attempt.data)} />}
      <p>
        <Link to={`/w/${ws}/instagram`}>Back to Instagram accounts</Link>
      </p>
    </section>
  );
}

/** The landing page for a link refused before its workspace was known (forged, expired, used). */
export function InstagramConnectRefused() {
  const [search] = useSearchParams();
  return (
    <section className="page center">
      <h1>Instagram</h1>
      <Outcome message={linkErrorMessage(search.get("error"))} />
      <p>
        <Link to="/">Back to Socialflow</Link>
      </p>
    </section>
  );
}
