import { Fragment, useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ok } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { StatusBadge, timeAgo } from "../components/Status";
import { LEDGER_STATUSES, ledgerQuery, textPreview, tokenAdvice, type LedgerFilters } from "../instagram/ledger";
import { EntryPoints } from "../instagram/EntryPoints";
import { loginName, type LoginKind } from "../instagram/connect";
import { useWorkspace } from "../state";

/** Connected Instagram accounts and the send ledger of what actions did or would do. */
export function Instagram() {
  const { id: ws, isAdmin } = useWorkspace();
  const queries = useQueryClient();
  const path = { workspace_id: ws };
  const [filters, setFilters] = useState<LedgerFilters>({ account: "", flow: "", status: "" });
  const [open, setOpen] = useState<string>();
  const accounts = useQuery({
    queryKey: ["ig-accounts", ws],
    queryFn: async () => ok(await api.GET("/api/workspaces/{workspace_id}/instagram/accounts", { params: { path } })),
  });
  const flows = useQuery({
    queryKey: ["ig-flows", ws],
    queryFn: async () =>
      ok(await api.GET("/api/workspaces/{workspace_id}/flows", { params: { path, query: { limit: 100 } } })),
  });
  const ledger = useQuery({
    queryKey: ["ig-outbox", ws, filters],
    queryFn: async () =>
      ok(await api.GET("/api/workspaces/{workspace_id}/instagram/outbox", { params: { path, query: ledgerQuery(filters) } })),
    refetchInterval: 3000,
  });
  const refresh = () => queries.invalidateQueries({ queryKey: ["ig-accounts", ws] });
  const setMode = useMutation({
    mutationFn: async ({ id, mode }: { id: string; mode: "sandbox" | "live" }) =>
      ok(
        await api.PATCH("/api/workspaces/{workspace_id}/instagram/accounts/{account_id}", {
          params: { path: { ...path, account_id: id } },
          body: { mode },
        }),
      ),
    onSuccess: () => void refresh(),
  });
  const remove = useMutation({
    mutationFn: async (id: string) =>
      ok(await api.DELETE("/api/workspaces/{workspace_id}/instagram/accounts/{account_id}", { params: { path: { ...path, account_id: id } } })),
    onSuccess: () => void refresh(),
  });
  const connect = useMutation({
    mutationFn: async (kind: LoginKind) =>
      kind === "facebook"
        ? ok(await api.POST("/api/workspaces/{workspace_id}/instagram/connect/facebook", { params: { path }, body: {} }))
        : ok(await api.POST("/api/workspaces/{workspace_id}/instagram/connect", { params: { path }, body: {} })),
    onSuccess: (start) => window.location.assign(start.authorize_url),
  });
  const flowItems = flows.data?.items ?? [];
  const flowName = (id: string | null | undefined) => flowItems.find((f) => f.id === id)?.name ?? (id ? id.slice(0, 8) : "—");
  const items = accounts.data ?? [];
  const rows = ledger.data?.items ?? [];
  return (
    <section className="page">
      <h1>Instagram</h1>
      <ErrorNote error={accounts.error ?? setMode.error ?? remove.error ?? connect.error} />
      <div className="row">
        <h2>Accounts</h2>
        {isAdmin && (
          <div className="row">
            <button type="button" className="primary" onClick={() => connect.mutate("instagram")} disabled={connect.isPending}>
              Connect Instagram
            </button>
            <button
              type="button"
              onClick={() => connect.mutate("facebook")}
              disabled={connect.isPending}
              title="For Instagram professional accounts linked to a Facebook Page"
            >
              Connect with Facebook
            </button>
          </div>
        )}
      </div>
      {accounts.isSuccess && items.length === 0 && <p className="empty">No Instagram account connected yet.</p>}
      {items.length > 0 && (
        <table className="grid" aria-label="Instagram accounts">
          <thead>
            <tr>
              <th>Username</th>
              <th>Id</th>
              <th>Connected with</th>
              <th>Mode</th>
              <th>Token</th>
              {isAdmin && <th>Actions</th>}
            </tr>
          </thead>
          <tbody>
            {items.map((a) => {
              const advice = tokenAdvice(a.token_status, a.login_kind);
              const next = a.mode === "live" ? "sandbox" : "live";
              return (
                <tr key={a.id}>
                  <td>@{a.username}</td>
                  <td className="mono">{a.ig_user_id}</td>
                  <td>
                    {loginName(a.login_kind)}
                    {a.page_id && <div className="muted">Page {a.page_name || a.page_id}</div>}
                  </td>
                  <td>
                    <StatusBadge status={a.mode} />
                    {isAdmin && (
                      <button
                        type="button"
                        onClick={() =>
                          (next === "sandbox" ||
                            window.confirm(`Go live with @${a.username}? Actions will really be sent on Instagram.`)) &&
                          setMode.mutate({ id: a.id, mode: next })
                        }
                      >
                        {next === "live" ? "Go live" : "Back to sandbox"}
                      </button>
                    )}
                  </td>
                  <td>
                    <StatusBadge status={a.token_status} /> <span className="muted">{advice.text}</span>
                    {a.last_error && <div className="muted">{a.last_error}</div>}
                    {advice.reconnect && isAdmin && (
                      <button type="button" onClick={() => connect.mutate(a.login_kind === "facebook" ? "facebook" : "instagram")}>
                        Reconnect
                      </button>
                    )}
                  </td>
                  {isAdmin && (
                    <td>
                      <button
                        type="button"
                        className="danger"
                        onClick={() => window.confirm(`Disconnect @${a.username}? Its token is deleted.`) && remove.mutate(a.id)}
                      >
                        Disconnect
                      </button>
                    </td>
                  )}
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <EntryPoints accounts={items} canEdit={isAdmin} />
      <h2>Send ledger</h2>
      <p className="muted">Every action flows took or would take; sandboxed ones were recorded, never sent.</p>
      <div className="row" role="group" aria-label="Ledger filters">
        <label>
          Account
          <select value={filters.account} onChange={(e) => setFilters({ ...filters, account: e.target.value })}>
            <option value="">All</option>
            {items.map((a) => (
              <option key={a.id} value={a.id}>
                @{a.username}
              </option>
            ))}
          </select>
        </label>
        <label>
          Flow
          <select value={filters.flow} onChange={(e) => setFilters({ ...filters, flow: e.target.value })}>
            <option value="">All</option>
            {flowItems.map((f) => (
              <option key={f.id} value={f.id}>
                {f.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Status
          <select value={filters.status} onChange={(e) => setFilters({ ...filters, status: e.target.value })}>
            <option value="">All</option>
            {LEDGER_STATUSES.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
      </div>
      <ErrorNote error={ledger.error} />
      {ledger.isSuccess && rows.length === 0 && <p className="empty">Nothing in the ledger yet.</p>}
      {rows.length > 0 && (
        <table className="grid" aria-label="Send ledger">
          <thead>
            <tr>
              <th>Time</th>
              <th>Flow</th>
              <th>Action</th>
              <th>Target</th>
              <th>Text</th>
              <th>Status</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <Fragment key={r.id}>
                <tr className="clickable" onClick={() => setOpen(open === r.id ? undefined : r.id)} title="Show the API response">
                  <td>{timeAgo(r.created_at)}</td>
                  <td>{flowName(r.flow_id)}</td>
                  <td>{r.action}</td>
                  <td className="mono">{r.target}</td>
                  <td>{textPreview(r.payload)}</td>
                  <td>
                    <StatusBadge status={r.status} />{" "}
                    <span className="muted">
                      {r.policy_verdict}
                      {r.policy_reason ? `: ${r.policy_reason}` : ""}
                    </span>
                  </td>
                </tr>
                {open === r.id && (
                  <tr>
                    <td colSpan={6}>
                      {r.error_message && <p className="error">{r.error_code}: {r.error_message}</p>}
                      <pre className="mono">{JSON.stringify({ payload: r.payload, response: r.response }, null, 2)}</pre>
                    </td>
                  </tr>
                )}
              </Fragment>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
