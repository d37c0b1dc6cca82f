import { Link, useParams } from "react-router-dom";
import { useQuery } from "@tanstack/react-query";
import { api, ok, type Schemas } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { StatusBadge } from "../components/Status";
import { jsonText, nodeChangeText, sendText } from "../events/events";
import { nodeTitle } from "../builder/graph";
import { useNodeTypes, useWorkspace } from "../state";

type Item = Schemas["ReplayItemRead"];
type RunRef = Schemas["RunRef"];

/** A replay of past events through a flow's draft: the summary, and per event the difference
 * in words, node by node, and the published version's sends beside the draft's. Polls until
 * every run has finished. */
export function Replay() {
  const { id: ws } = useWorkspace();
  const { flowId = "", replayId = "" } = useParams();
  const replay = useQuery({
    queryKey: ["replay", ws, flowId, replayId],
    queryFn: async () =>
      ok(
        await api.GET("/api/workspaces/{workspace_id}/flows/{flow_id}/replays/{replay_id}", {
          params: { path: { workspace_id: ws, flow_id: flowId, replay_id: replayId } },
        }),
      ),
    refetchInterval: (query) => (query.state.data?.status === "finished" ? false : 1500),
  });
  const data = replay.data;
  return (
    <section className="page">
      <Link to={`/w/${ws}/flows/${flowId}`} className="ghost">
        ← Back to the flow
      </Link>
      <div className="page-head">
        <h1>Replay through the draft</h1>
        {data && (
          <span className="live" role="status">
            {data.status === "finished" ? "Finished" : `Running… ${data.summary.finished} of ${data.summary.total} done`}
          </span>
        )}
      </div>
      <ErrorNote error={replay.error} />
      {data && (
        <>
          <p className="summary" aria-label="Replay summary">
            {data.summary.words}
          </p>
          <p className="muted small">The draft ran in the sandbox on each event: nothing was sent.</p>
          {data.items.length === 0 && <p className="empty">No events to replay.</p>}
          {data.items.map((item, index) => (
            <ReplayItem key={item.event_id ?? item.source_execution_id ?? index} item={item} ws={ws} />
          ))}
        </>
      )}
    </section>
  );
}

function RunLink({ run, ws, none }: { run: RunRef | null | undefined; ws: string; none: string }) {
  if (!run) return <span className="muted">{none}</span>;
  return (
    <>
      <Link to={`/w/${ws}/runs/${run.execution_id}`}>{run.version_number ? `v${run.version_number} run` : "draft run"}</Link>{" "}
      <StatusBadge status={run.status} />
    </>
  );
}

function ReplayItem({ item, ws }: { item: Item; ws: string }) {
  const kinds = useNodeTypes().data?.byKind;
  const changed = item.nodes.filter((n) => n.change !== "same");
  return (
    <article className="card replay-item" aria-label={`Replayed event ${item.preview}`} data-finished={String(item.finished)}>
      <h2 className="preview">
        {item.event_id ? <Link to={`/w/${ws}/events/${item.event_id}`}>{item.preview || "(no text)"}</Link> : item.preview}
        {!item.finished && <span className="muted small"> running…</span>}
      </h2>
      <ul className="difference" aria-label="Difference">
        {item.difference.map((line) => (
          <li key={line}>{line}</li>
        ))}
        {item.finished && item.difference.length === 0 && <li className="muted">No difference.</li>}
      </ul>
      <div className="compare">
        <div>
          <h3>Published</h3>
          <p>
            <RunLink run={item.published} ws={ws} none={item.published_reason ?? "did not run"} />
          </p>
          <Sends sends={item.published_sends} label="Published sends" />
        </div>
        <div>
          <h3>Draft</h3>
          <p>
            <RunLink run={item.draft} ws={ws} none={item.draft_reason ?? "did not run"} />
          </p>
          <Sends sends={item.draft_sends} label="Draft sends" />
        </div>
      </div>
      {item.nodes.length > 0 && (
        <details open={changed.length > 0}>
          <summary>
            Node by node ({changed.length} of {item.nodes.length} differ)
          </summary>
          <table className="grid" aria-label="Node by node">
            <thead>
              <tr>
                <th>Node</th>
                <th>Published</th>
                <th>Draft</th>
                <th>Change</th>
              </tr>
            </thead>
            <tbody>
              {item.nodes.map((n) => (
                <tr key={n.node_id} data-change={n.change}>
                  <td>
                    {nodeTitle(n, kinds)} <span className="muted small mono">{n.kind}</span>
                  </td>
                  <td>{n.published_status ? <StatusBadge status={n.published_status} /> : "—"}</td>
                  <td>{n.draft_status ? <StatusBadge status={n.draft_status} /> : "—"}</td>
                  <td>
                    {nodeChangeText(n)}
                    {n.change === "output" && (
                      <div className="compare">
                        <pre>{jsonText(n.published_output)}</pre>
                        <pre>{jsonText(n.draft_output)}</pre>
                      </div>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </details>
      )}
    </article>
  );
}

function Sends({ sends, label }: { sends: Schemas["SendRead"][]; label: string }) {
  if (sends.length === 0) return <p className="muted small">Sends nothing.</p>;
  return (
    <ul aria-label={label} className="small">
      {sends.map((s, i) => (
        <li key={`${s.node_id}-${i}`}>{sendText(s)}</li>
      ))}
    </ul>
  );
}
