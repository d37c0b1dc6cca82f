import { useMemo, useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router-dom";
import { useMutation, useQuery } from "@tanstack/react-query";
import { api, ok, type ExecutionSummary, type GraphSpec } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { StatusBadge, timeAgo } from "../components/Status";
import { TEMPLATES, missingKinds, type TemplateField } from "../flows/templates";
import { useNodeTypes, useWorkspace } from "../state";

const DAY_MS = 24 * 3600 * 1000;

/** Last run and runs in the last 24 h per flow. There is no summary endpoint: computed from the
 * newest 200 executions of the workspace. */
export function runStats(runs: ExecutionSummary[], now = Date.now()) {
  const stats = new Map<string, { last?: ExecutionSummary; day: number }>();
  for (const run of runs) {
    if (!run.flow_id) continue;
    const entry = stats.get(run.flow_id) ?? { day: 0 };
    if (!entry.last) entry.last = run;
    if (now - Date.parse(run.created_at) <= DAY_MS) entry.day += 1;
    stats.set(run.flow_id, entry);
  }
  return stats;
}

/** Creates the contact fields a template saves to that the workspace does not have yet. */
async function ensureFields(ws: string, fields: TemplateField[]) {
  const existing = ok(
    await api.GET("/api/workspaces/{workspace_id}/contact-fields", { params: { path: { workspace_id: ws } } }),
  );
  const keys = new Set(existing.map((f) => f.key));
  for (const field of fields.filter((f) => !keys.has(f.key))) {
    ok(
      await api.POST("/api/workspaces/{workspace_id}/contact-fields", {
        params: { path: { workspace_id: ws } },
        body: { key: field.key, label: field.label, type: field.type },
      }),
    );
  }
}

function NewFlow({ onClose }: { onClose: () => void }) {
  const { id: ws } = useWorkspace();
  const navigate = useNavigate();
  const kinds = useNodeTypes();
  const [name, setName] = useState("");
  const [template, setTemplate] = useState("blank");
  const available = useMemo(() => new Set(kinds.data?.list.map((k) => k.kind)), [kinds.data]);
  const create = useMutation({
    mutationFn: async () => {
      const chosen = TEMPLATES.find((t) => t.id === template);
      const graph: GraphSpec = chosen ? structuredClone(chosen.graph) : { nodes: [], edges: [] };
      const flowName = name.trim() || chosen?.name || "Untitled flow";
      if (chosen?.fields?.length) await ensureFields(ws, chosen.fields);
      return ok(
        await api.POST("/api/workspaces/{workspace_id}/flows", {
          params: { path: { workspace_id: ws }, query: { validate: false } },
          body: { name: flowName, description: chosen?.description ?? "", graph },
        }),
      );
    },
    onSuccess: (flow) => navigate(`/w/${ws}/flows/${flow.id}`),
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  return (
    <form className="card" onSubmit={submit} aria-label="New flow">
      <h2>New flow</h2>
      <label>
        Name
        <input value={name} onChange={(e) => setName(e.target.value)} maxLength={200} placeholder="Untitled flow" />
      </label>
      <fieldset className="templates">
        <legend>Start from</legend>
        <label className="template">
          <input type="radio" name="template" checked={template === "blank"} onChange={() => setTemplate("blank")} />
          <strong>Blank flow</strong>
          <span className="muted">An empty canvas.</span>
        </label>
        {TEMPLATES.map((t) => {
          const missing = kinds.data ? missingKinds(t, available) : [];
          return (
            <label key={t.id} className={`template${missing.length ? " disabled" : ""}`}>
              <input
                type="radio"
                name="template"
                disabled={missing.length > 0}
                checked={template === t.id}
                onChange={() => setTemplate(t.id)}
              />
              <strong>{t.name}</strong>
              <span className="muted">{t.description}</span>
              {missing.length > 0 && <span className="needs">needs {missing.join(", ")}</span>}
            </label>
          );
        })}
      </fieldset>
      <div className="row">
        <button type="submit" className="primary" disabled={create.isPending}>
          Create flow
        </button>
        <button type="button" onClick={onClose}>
          Cancel
        </button>
      </div>
      <ErrorNote error={create.error} />
    </form>
  );
}

export function FlowsList() {
  const { id: ws, canEdit } = useWorkspace();
  const [search, setSearch] = useState("");
  const [status, setStatus] = useState<"" | "draft" | "active" | "paused">("");
  const [creating, setCreating] = useState(false);
  const flows = useQuery({
    queryKey: ["flows", ws, search, status],
    queryFn: async () =>
      ok(
        await api.GET("/api/workspaces/{workspace_id}/flows", {
          params: {
            path: { workspace_id: ws },
            query: { search: search || undefined, status: status || undefined, limit: 100 },
          },
        }),
      ),
  });
  const runs = useQuery({
    queryKey: ["executions", ws, "recent"],
    queryFn: async () =>
      ok(
        await api.GET("/api/workspaces/{workspace_id}/executions", {
          params: { path: { workspace_id: ws }, query: { limit: 200 } },
        }),
      ),
    refetchInterval: 15_000,
  });
  const stats = useMemo(() => runStats(runs.data?.items ?? []), [runs.data]);
  return (
    <section className="page">
      <div className="page-head">
        <h1>Flows</h1>
        {canEdit && !creating && (
          <button type="button" className="primary" onClick={() => setCreating(true)}>
            New flow
          </button>
        )}
      </div>
      {creating && <NewFlow onClose={() => setCreating(false)} />}
      <div className="filters">
        <label>
          Search
          <input type="search" value={search} onChange={(e) => setSearch(e.target.value)} placeholder="Flow name" />
        </label>
        <label>
          Status
          <select value={status} onChange={(e) => setStatus(e.target.value as typeof status)}>
            <option value="">Any</option>
            <option value="draft">Draft</option>
            <option value="active">Active</option>
            <option value="paused">Paused</option>
          </select>
        </label>
      </div>
      <ErrorNote error={flows.error ?? runs.error} />
      {flows.data && flows.data.items.length === 0 && (
        <p className="empty">
          {search || status
            ? "No flow matches these filters."
            : canEdit
              ? "No flows yet. Create one from a template or a blank canvas."
              : "No flows yet. Editors of this workspace can create them."}
        </p>
      )}
      {flows.data && flows.data.items.length > 0 && (
        <table className="grid">
          <thead>
            <tr>
              <th>Name</th>
              <th>Status</th>
              <th>Version</th>
              <th>Last run</th>
              <th title="Computed from the newest 200 runs">Runs (24 h)</th>
            </tr>
          </thead>
          <tbody>
            {flows.data.items.map((f) => {
              const s = stats.get(f.id);
              return (
                <tr key={f.id}>
                  <td>
                    <Link to={f.id}>{f.name}</Link>
                    {f.description && <div className="muted small">{f.description}</div>}
                  </td>
                  <td>
                    <StatusBadge status={f.status} />
                  </td>
                  <td>{f.active_version ? `v${f.active_version}` : "—"}</td>
                  <td>
                    {s?.last ? (
                      <Link to={`../runs/${s.last.id}`}>
                        <StatusBadge status={s.last.status} /> {timeAgo(s.last.created_at)}
                      </Link>
                    ) : (
                      <span className="muted">never</span>
                    )}
                  </td>
                  <td>{s?.day ?? 0}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}
