import { useEffect, useState } from "react";
import { Link } from "react-router-dom";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ok } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { StatusBadge, timeAgo } from "../components/Status";
import { keywordList } from "../events/conversations";
import { useWorkspace } from "../state";

const STATUSES = ["waiting", "answered", "timed_out", "cancelled"] as const;
type WaitStatus = (typeof STATUSES)[number];

/** Runs waiting for a contact's answer, and the workspace's global keywords. */
export function Conversations() {
  const { id: ws, canEdit } = useWorkspace();
  const path = { workspace_id: ws };
  const queries = useQueryClient();
  const [status, setStatus] = useState<WaitStatus>("waiting");
  const [draft, setDraft] = useState("");
  const waits = useQuery({
    queryKey: ["waits", ws, status],
    queryFn: async () => ok(await api.GET("/api/workspaces/{workspace_id}/conversations/waits", { params: { path, query: { status } } })),
    refetchInterval: 5000,
  });
  const keywords = useQuery({
    queryKey: ["keywords", ws],
    queryFn: async () => ok(await api.GET("/api/workspaces/{workspace_id}/conversations/keywords", { params: { path } })),
  });
  useEffect(() => {
    if (keywords.data) setDraft(keywords.data.keywords.join(", "));
  }, [keywords.data]);
  const save = useMutation({
    mutationFn: async () =>
      ok(await api.PUT("/api/workspaces/{workspace_id}/conversations/keywords", { params: { path }, body: { keywords: keywordList(draft) } })),
    onSuccess: () => void queries.invalidateQueries({ queryKey: ["keywords", ws] }),
  });
  return (
    <section className="page">
      <div className="page-head">
        <h1>Conversations</h1>
      </div>
      <h2>Global keywords</h2>
      <p className="muted small">
        Sent alone by a contact, these words go to your flows even while a run waits for that contact's answer, and end that run (for
        example: stop).
      </p>
      <form
        className="row"
        onSubmit={(e) => {
          e.preventDefault();
          save.mutate();
        }}
      >
        <input aria-label="Global keywords" value={draft} onChange={(e) => setDraft(e.target.value)} disabled={!canEdit} placeholder="stop, unsubscribe" />
        {canEdit && (
          <button type="submit" disabled={save.isPending}>
            Save
          </button>
        )}
      </form>
      <ErrorNote error={save.error ?? keywords.error} />
      <h2>Waits</h2>
      <label>
        Status{" "}
        <select value={status} onChange={(e) => setStatus(e.target.value as WaitStatus)}>
          {STATUSES.map((s) => (
            <option key={s}>{s}</option>
          ))}
        </select>
      </label>
      <ErrorNote error={waits.error} />
      <table className="table">
        <thead>
          <tr>
            <th>Contact</th>
            <th>Question</th>
            <th>Tries</th>
            <th>Until</th>
            <th>Run</th>
          </tr>
        </thead>
        <tbody>
          {(waits.data?.items ?? []).map((w) => (
            <tr key={w.id}>
              <td className="mono">
                {w.contact_id} <span className="muted small">on {w.account_id}</span>
              </td>
              <td>
                {w.question} <span className="muted small">({w.expects})</span>
                {w.reply && <p className="small">reply: {String(w.reply.text ?? w.reply.payload ?? w.reply.kind)}</p>}
              </td>
              <td>{w.tries}</td>
              <td title={w.expires_at}>{w.status === "waiting" ? new Date(w.expires_at).toLocaleString() : timeAgo(w.resolved_at ?? w.created_at)}</td>
              <td>
                <Link to={`/w/${ws}/runs/${w.execution_id}`}>the run</Link> <StatusBadge status={w.status} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {waits.data && waits.data.items.length === 0 && <p className="muted">No {status} conversations.</p>}
    </section>
  );
}
