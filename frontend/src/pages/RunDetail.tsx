import { useMemo, useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Background, ReactFlow, ReactFlowProvider } from "@xyflow/react";
import { api, ok, type GraphSpec } from "../api/client";
import { CanvasContext, SfNode, type NodeRunState } from "../builder/SfNode";
import { fromGraphSpec, nodeTitle } from "../builder/graph";
import { ErrorNote } from "../components/ErrorNote";
import { StatusBadge, duration, timeAgo } from "../components/Status";
import { useRunStream } from "../live";
import { useNodeTypes, useWorkspace } from "../state";
import { costText, nodeUsageText, tokensText } from "./runUsage";

const NODE_TYPES = { sf: SfNode };
const ACTIVE = new Set(["pending", "queued", "running", "waiting"]);

function Json({ value, truncated }: { value: unknown; truncated: boolean }) {
  if (value == null) return <span className="muted">—</span>;
  return (
    <>
      <pre className="mono">{JSON.stringify(value, null, 2)}</pre>
      {truncated && <p className="muted small">Preview: the recorded value was larger.</p>}
    </>
  );
}

export function RunDetail() {
  const { id: ws, canEdit } = useWorkspace();
  const { executionId = "" } = useParams();
  const queries = useQueryClient();
  const navigate = useNavigate();
  const kinds = useNodeTypes();
  const [open, setOpen] = useState<string>();
  const path = { workspace_id: ws, execution_id: executionId };
  const run = useQuery({
    queryKey: ["execution", ws, executionId],
    queryFn: async () => ok(await api.GET("/api/workspaces/{workspace_id}/executions/{execution_id}", { params: { path } })),
  });
  const exec = run.data;
  const graph = useQuery({
    queryKey: ["run-graph", ws, exec?.flow_id, exec?.flow_version_id, exec?.sandbox],
    enabled: Boolean(exec?.flow_id),
    queryFn: async (): Promise<GraphSpec> => {
      const flowPath = { workspace_id: ws, flow_id: exec!.flow_id! };
      if (exec!.flow_version_id) {
        const versions = ok(await api.GET("/api/workspaces/{workspace_id}/flows/{flow_id}/versions", { params: { path: flowPath, query: { limit: 100 } } }));
        const hit = versions.items.find((v) => v.id === exec!.flow_version_id);
        if (hit) {
          return ok(await api.GET("/api/workspaces/{workspace_id}/flows/{flow_id}/versions/{number}", { params: { path: { ...flowPath, number: hit.number } } })).graph;
        }
      }
      return ok(await api.GET("/api/workspaces/{workspace_id}/flows/{flow_id}", { params: { path: flowPath } })).graph;
    },
  });
  useRunStream(ws, () => void queries.invalidateQueries({ queryKey: ["execution", ws, executionId] }), executionId);
  const rerun = useMutation({
    mutationFn: async () => ok(await api.POST("/api/workspaces/{workspace_id}/executions/{execution_id}/rerun", { params: { path }, body: { version: "same" } })),
    onSuccess: (queued) => navigate(`../${queued.execution_id}`, { relative: "path" }),
  });
  const cancel = useMutation({
    mutationFn: async () => ok(await api.POST("/api/workspaces/{workspace_id}/executions/{execution_id}/cancel", { params: { path } })),
    onSuccess: () => queries.invalidateQueries({ queryKey: ["execution", ws, executionId] }),
  });
  const canvas = useMemo(() => {
    const runs = new Map<string, NodeRunState>((exec?.node_runs ?? []).map((n) => [n.node_id, { status: n.status, error: n.error, duration_ms: n.duration_ms }]));
    return { kinds: kinds.data?.byKind ?? new Map(), problems: new Map<string, string[]>(), runs };
  }, [exec, kinds.data]);
  const editorGraph = useMemo(() => (graph.data ? fromGraphSpec(graph.data, kinds.data?.byKind) : null), [graph.data, kinds.data]);

  if (run.error) return <ErrorNote error={run.error} />;
  if (!exec) return <p className="center muted">Loading the run…</p>;
  return (
    <section className="page">
      <p>
        <Link to=".." relative="path">
          ← Runs
        </Link>
      </p>
      <div className="page-head">
        <h1>
          {exec.flow_name} <StatusBadge status={exec.status} /> {exec.sandbox && <span className="badge">test</span>}
        </h1>
        <div className="row">
          {exec.prefect_url && (
            <a href={exec.prefect_url} target="_blank" rel="noreferrer">
              Open in Prefect
            </a>
          )}
          {canEdit && exec.flow_version_id && !ACTIVE.has(exec.status) && (
            <button type="button" onClick={() => rerun.mutate()} disabled={rerun.isPending}>
              Re-run
            </button>
          )}
          {canEdit && ACTIVE.has(exec.status) && !exec.cancel_requested_at && (
            <button type="button" className="danger" onClick={() => cancel.mutate()} disabled={cancel.isPending}>
              Cancel run
            </button>
          )}
        </div>
      </div>
      <ErrorNote error={rerun.error ?? cancel.error} />
      <dl className="facts">
        <dt>Trigger</dt>
        <dd>{exec.trigger_kind}</dd>
        <dt>Created</dt>
        <dd title={exec.created_at}>{timeAgo(exec.created_at)}</dd>
        <dt>Duration</dt>
        <dd>{duration(exec.duration_ms)}</dd>
        {exec.usage && (
          <>
            <dt>Model usage</dt>
            <dd>{tokensText(exec.usage)}</dd>
            <dt>Cost</dt>
            <dd title={exec.usage.unpriced_calls ? "? : calls of models missing from the price table" : undefined}>{costText(exec.usage) || "$0"}</dd>
          </>
        )}
        {exec.cancel_requested_at && (
          <>
            <dt>Cancel</dt>
            <dd>requested {timeAgo(exec.cancel_requested_at)}</dd>
          </>
        )}
      </dl>
      {exec.error && (
        <p className="error" role="alert">
          {exec.error_node_id ? `${exec.error_node_id}: ` : ""}
          {exec.error}
        </p>
      )}
      {editorGraph && (
        <div className="run-canvas">
          <CanvasContext.Provider value={canvas}>
            <ReactFlowProvider>
              <ReactFlow
                nodes={editorGraph.nodes}
                edges={editorGraph.edges}
                nodeTypes={NODE_TYPES}
                nodesDraggable={false}
                nodesConnectable={false}
                onNodeClick={(_, n) => setOpen(n.id)}
                fitView
                fitViewOptions={{ maxZoom: 1 }}
                proOptions={{ hideAttribution: true }}
              >
                <Background />
              </ReactFlow>
            </ReactFlowProvider>
          </CanvasContext.Provider>
        </div>
      )}
      <h2>Nodes</h2>
      {exec.node_runs.length === 0 && <p className="empty">No node has run yet.</p>}
      <div className="node-runs">
        {exec.node_runs.map((n) => (
          <details key={n.node_id} open={open === n.node_id || n.status === "failed"} className={`node-run st-border-${n.status}`}>
            <summary>
              <strong>{nodeTitle(n, kinds.data?.byKind)}</strong> <span className="muted">{n.kind}</span> <StatusBadge status={n.status} />{" "}
              <span className="muted">
                {duration(n.duration_ms)}
                {n.attempts > 1 ? ` · ${n.attempts} attempts` : ""}
                {n.fired_ports ? ` · fired ${n.fired_ports.join(", ") || "nothing"}` : ""}
                {nodeUsageText(n.usage) && ` · ${nodeUsageText(n.usage)}`}
              </span>
            </summary>
            {n.error && (
              <p className="error">
                {n.error_code ? `${n.error_code}: ` : ""}
                {n.error}
              </p>
            )}
            <div className="io">
              <div>
                <h3>Input</h3>
                <Json value={n.input} truncated={n.input_truncated} />
              </div>
              <div>
                <h3>Output</h3>
                <Json value={n.output} truncated={n.output_truncated} />
              </div>
            </div>
          </details>
        ))}
      </div>
      {exec.trigger_payload != null && (
        <details>
          <summary>Trigger payload</summary>
          <Json value={exec.trigger_payload} truncated={false} />
        </details>
      )}
    </section>
  );
}
