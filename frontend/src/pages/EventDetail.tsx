import { useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { useMutation, useQuery } from "@tanstack/react-query";
import { api, ok } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { StatusBadge, timeAgo } from "../components/Status";
import { eventSample, jsonText, outcomeText } from "../events/events";
import { useWorkspace } from "../state";
import { EVENTS_POLL_MS } from "./Events";

const FINAL_RUN = new Set(["completed", "failed", "cancelled", "crashed"]);

/** One event: per flow the run it started or why not, its payload and raw body, and what can be
 * done with it (copy as a test sample, test a flow with it, replay it through a flow's draft). */
export function EventDetail() {
  const { id: ws, canEdit } = useWorkspace();
  const { eventId = "" } = useParams();
  const navigate = useNavigate();
  const [copied, setCopied] = useState("");
  const event = useQuery({
    queryKey: ["event", ws, eventId],
    queryFn: async () =>
      ok(await api.GET("/api/workspaces/{workspace_id}/events/{event_id}", { params: { path: { workspace_id: ws, event_id: eventId } } })),
    // follow it until every outcome is known and every run it started has finished
    refetchInterval: (query) => {
      const data = query.state.data;
      if (!data) return false;
      const open = data.outcome === "pending" || data.flows.some((f) => f.ran && !FINAL_RUN.has(f.execution_status ?? ""));
      return open ? EVENTS_POLL_MS : false;
    },
  });
  const replay = useMutation({
    mutationFn: async (flowId: string) => ({
      flowId,
      replay: ok(
        await api.POST("/api/workspaces/{workspace_id}/flows/{flow_id}/replays", {
          params: { path: { workspace_id: ws, flow_id: flowId } },
          body: { event_ids: [eventId] },
        }),
      ),
    }),
    onSuccess: ({ flowId, replay: started }) => navigate(`/w/${ws}/flows/${flowId}/replays/${started.id}`),
  });
  const data = event.data;
  const sample = eventSample(data?.sample);
  const copy = async () => {
    if (!sample) return;
    try {
      await navigator.clipboard.writeText(JSON.stringify(sample.payload, null, 2));
      setCopied("Copied: paste it into a flow's test panel, or use “Test a flow with it” below.");
    } catch {
      setCopied("The browser did not allow copying; use “Test a flow with it” below instead.");
    }
  };
  const flows = data?.flows ?? [];
  return (
    <section className="page">
      <Link to=".." relative="path" className="ghost">
        ← Events
      </Link>
      <ErrorNote error={event.error} />
      {data && (
        <>
          <div className="page-head">
            <h1 className="preview">{data.preview || "(no text)"}</h1>
            <span className={`badge outcome-${data.outcome}`}>{outcomeText(data.outcome)}</span>
          </div>
          <p className="muted">
            <span className="mono">{data.kind}</span> from {data.source}
            {data.account_id && <> · account {data.account_id}</>} · received <span title={data.received_at}>{timeAgo(data.received_at)}</span>
            {" "}· inbox status {data.status}, {data.attempts} dispatch attempt{data.attempts === 1 ? "" : "s"}
          </p>
          {data.last_error && <p className="error">Dispatch error: {data.last_error}</p>}
          {data.reason && data.outcome !== "ran" && <p className="reason">{data.reason}</p>}

          <h2>Flows</h2>
          {flows.length === 0 ? (
            <p className="empty">No flow of this workspace could have taken this event.</p>
          ) : (
            <table className="grid" aria-label="Flows of this event">
              <thead>
                <tr>
                  <th>Flow</th>
                  <th>What happened</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {flows.map((f) => (
                  <tr key={`${f.flow_id}:${f.code ?? "ran"}:${f.execution_id ?? ""}`} data-ran={String(f.ran)}>
                    <td>
                      <Link to={`/w/${ws}/flows/${f.flow_id}`}>{f.flow_name}</Link>
                      {f.version_number != null && <span className="muted small"> v{f.version_number}</span>}
                    </td>
                    <td>
                      {f.ran && f.execution_id ? (
                        <>
                          ran: <Link to={`/w/${ws}/runs/${f.execution_id}`}>the run</Link>{" "}
                          {f.execution_status && <StatusBadge status={f.execution_status} />}
                          {f.sandbox && <span className="badge">sandbox</span>}
                        </>
                      ) : f.resumed && f.execution_id ? (
                        <>
                          answered <Link to={`/w/${ws}/runs/${f.execution_id}`}>the run</Link> that waited for this reply
                        </>
                      ) : (
                        <span className="reason">{f.reason ?? f.code ?? "did not run"}</span>
                      )}
                    </td>
                    <td>
                      <div className="row">
                        <Link to={`/w/${ws}/flows/${f.flow_id}?event=${data.id}`}>Test the draft with it</Link>
                        {canEdit && (
                          <button type="button" onClick={() => replay.mutate(f.flow_id)} disabled={replay.isPending}>
                            Replay through the draft
                          </button>
                        )}
                      </div>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <ErrorNote error={replay.error} />

          <div className="row">
            <button type="button" onClick={() => void copy()} disabled={!sample}>
              Copy as test sample
            </button>
            {copied && (
              <span className="muted small" role="status">
                {copied}
              </span>
            )}
          </div>
          <h2>Payload</h2>
          <p className="muted small">The event as triggers receive it (trigger.*); secrets and tokens are never shown.</p>
          <pre aria-label="Payload">{jsonText(data.payload)}</pre>
          <h2>Raw body</h2>
          <pre aria-label="Raw body">{jsonText(data.raw_body)}</pre>
          {Object.keys(data.headers).length > 0 && (
            <>
              <h2>Headers</h2>
              <pre aria-label="Headers">{jsonText(data.headers)}</pre>
            </>
          )}
        </>
      )}
    </section>
  );
}
