import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ok, type Flow, type GraphSpec } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";

interface Props {
  flow: Flow;
  workspaceId: string;
  readOnly: boolean;
  viewing?: number;
  onView: (number: number, graph: GraphSpec | null) => void;
}

/** Published versions: view one on the canvas, or roll back to it. */
export function VersionsPanel({ flow, workspaceId, readOnly, viewing, onView }: Props) {
  const queries = useQueryClient();
  const path = { workspace_id: workspaceId, flow_id: flow.id };
  const versions = useQuery({
    queryKey: ["versions", workspaceId, flow.id],
    queryFn: async () => ok(await api.GET("/api/workspaces/{workspace_id}/flows/{flow_id}/versions", { params: { path, query: { limit: 100 } } })),
  });
  const view = useMutation({
    mutationFn: async (number: number) =>
      ok(await api.GET("/api/workspaces/{workspace_id}/flows/{flow_id}/versions/{number}", { params: { path: { ...path, number } } })),
    onSuccess: (version) => onView(version.number, version.graph),
  });
  const rollback = useMutation({
    mutationFn: async (number: number) =>
      ok(await api.POST("/api/workspaces/{workspace_id}/flows/{flow_id}/versions/{number}/activate", { params: { path: { ...path, number } } })),
    onSuccess: async () => {
      await queries.invalidateQueries({ queryKey: ["versions", workspaceId, flow.id] });
      await queries.invalidateQueries({ queryKey: ["flow", workspaceId, flow.id] });
    },
  });
  const items = versions.data?.items ?? [];
  return (
    <div className="panel">
      <ErrorNote error={versions.error ?? view.error ?? rollback.error} />
      {versions.isSuccess && items.length === 0 && <p className="empty">Not published yet. Publish to create version 1.</p>}
      <ul className="versions">
        {items.map((v) => (
          <li key={v.id} className={v.active ? "active" : ""}>
            <div>
              <strong>v{v.number}</strong> {v.active && <span className="badge st-active">live</span>}
              <div className="muted small">{new Date(v.published_at).toLocaleString()}</div>
              {v.note && <div className="small">{v.note}</div>}
            </div>
            <div className="row">
              {viewing === v.number ? (
                <button type="button" onClick={() => onView(v.number, null)}>
                  Close
                </button>
              ) : (
                <button type="button" onClick={() => view.mutate(v.number)}>
                  View
                </button>
              )}
              {!readOnly && !v.active && (
                <button type="button" onClick={() => rollback.mutate(v.number)} disabled={rollback.isPending}>
                  Roll back to v{v.number}
                </button>
              )}
            </div>
          </li>
        ))}
      </ul>
    </div>
  );
}
