import { useMemo, useRef, useState } from "react";
import { Link } from "react-router-dom";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ok, type Schemas } from "../api/client";
import { DurationByFlow, RunsPerHour } from "../components/Charts";
import { ErrorNote } from "../components/ErrorNote";
import { StatusBadge, duration, timeAgo } from "../components/Status";
import { useRunStream } from "../live";
import { useWorkspace } from "../state";
import { costText, tokensText } from "./runUsage";

type Status = Schemas["ExecutionStatus"];
const STATUSES: Status[] = ["pending", "queued", "running", "waiting", "completed", "failed", "cancelled", "crashed"];
const WINDOWS = { "1h": 3600, "24h": 86400, "7d": 7 * 86400, all: 0 } as const;

export function RunsList() {
  const { id: ws } = useWorkspace();
  const queries = useQueryClient();
  const [flowId, setFlowId] = useState("");
  const [status, setStatus] = useState<Status | "">("");
  const [window, setWindow] = useState<keyof typeof WINDOWS>("24h");
  const flows = useQuery({
    queryKey: ["flows", ws, "all"],
    queryFn: async () => ok(await api.GET("/api/workspaces/{workspace_id}/flows", { params: { path: { workspace_id: ws }, query: { limit: 100 } } })),
  });
  const since = WINDOWS[window] ? new Date(Date.now() - WINDOWS[window] * 1000).toISOString() : undefined;
  const runs = useQuery({
    queryKey: ["executions", ws, flowId, status, window],
    queryFn: async () =>
      ok(
        await api.GET("/api/workspaces/{workspace_id}/executions", {
          params: {
            path: { workspace_id: ws },
            query: { flow_id: flowId || undefined, status: status ? [status] : undefined, created_after: since, limit: 200 },
          },
        }),
      ),
    refetchInterval: 30_000,
  });
  const pending = useRef<ReturnType<typeof setTimeout>>();
  const live = useRunStream(ws, (message) => {
    if (message.type === "snapshot") return;
    if (message.type === "node" && message.status === "running") return;
    clearTimeout(pending.current);
    pending.current = setTimeout(() => void queries.invalidateQueries({ queryKey: ["executions", ws] }), 200);
  });
  const items = useMemo(() => runs.data?.items ?? [], [runs.data]);
  const showCost = items.some((r) => costText(r.usage) !== "");
  return (
    <section className="page">
      <div className="page-head">
        <h1>Runs</h1>
        <span className={`live ${live ? "on" : ""}`} role="status">
          {live ? "● Live" : "○ Connecting…"}
        </span>
      </div>
      <div className="filters">
        <label>
          Flow
          <select value={flowId} onChange={(e) => setFlowId(e.target.value)}>
            <option value="">All flows</option>
            {(flows.data?.items ?? []).map((f) => (
              <option key={f.id} value={f.id}>
                {f.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Status
          <select value={status} onChange={(e) => setStatus(e.target.value as Status | "")}>
            <option value="">Any</option>
            {STATUSES.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Time
          <select value={window} onChange={(e) => setWindow(e.target.value as keyof typeof WINDOWS)}>
            <option value="1h">Last hour</option>
            <option value="24h">Last 24 hours</option>
            <option value="7d">Last 7 days</option>
            <option value="all">Any time</option>
          </select>
        </label>
      </div>
      <ErrorNote error={runs.error} />
      {items.length > 0 && (
        <div className="charts">
          <RunsPerHour runs={items} />
          <DurationByFlow runs={items} />
        </div>
      )}
      {runs.isSuccess && items.length === 0 && (
        <p className="empty">No runs match. Runs appear here live as flows are triggered, run now, or tested.</p>
      )}
      {items.length > 0 && (
        <table className="grid" aria-label="Runs">
          <thead>
            <tr>
              <th>Flow</th>
              <th>Status</th>
              <th>Trigger</th>
              <th>Started</th>
              <th>Duration</th>
              {showCost && <th title="Cost of the run's model calls (? : a model missing from the price table)">Cost</th>}
            </tr>
          </thead>
          <tbody>
            {items.map((r) => (
              <tr key={r.id} data-status={r.status} data-sandbox={String(r.sandbox)}>
                <td>
                  <Link to={r.id}>{r.flow_name}</Link> {r.sandbox && <span className="badge">test</span>}
                </td>
                <td>
                  <StatusBadge status={r.status} />
                </td>
                <td>{r.trigger_kind}</td>
                <td title={r.created_at}>{timeAgo(r.created_at)}</td>
                <td>{duration(r.duration_ms)}</td>
                {showCost && <td title={tokensText(r.usage)}>{costText(r.usage)}</td>}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {runs.data && runs.data.total > items.length && (
        <p className="muted small">
          Showing the newest {items.length} of {runs.data.total} runs; narrow the filters to see older ones.
        </p>
      )}
    </section>
  );
}
