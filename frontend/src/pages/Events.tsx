import { useState } from "react";
import { Link } from "react-router-dom";
import { useQuery } from "@tanstack/react-query";
import { api, ok } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { timeAgo } from "../components/Status";
import { KINDS, NO_FILTERS, OUTCOMES, SOURCES, eventsQuery, outcomeText, type EventFilters, type TimeWindow } from "../events/events";
import { useWorkspace } from "../state";

/** How often the list is refetched while the page is visible (new events, changed outcomes). */
export const EVENTS_POLL_MS = 2500;

/** The workspace's inbound events, newest first: what each started, or why nothing ran. */
export function Events() {
  const { id: ws } = useWorkspace();
  const path = { workspace_id: ws };
  const [filters, setFilters] = useState<EventFilters>(NO_FILTERS);
  const set = (change: Partial<EventFilters>) => setFilters((f) => ({ ...f, ...change }));
  const flows = useQuery({
    queryKey: ["flows", ws, "all"],
    queryFn: async () => ok(await api.GET("/api/workspaces/{workspace_id}/flows", { params: { path, query: { limit: 100 } } })),
  });
  const accounts = useQuery({
    queryKey: ["ig-accounts", ws],
    queryFn: async () => ok(await api.GET("/api/workspaces/{workspace_id}/instagram/accounts", { params: { path } })),
  });
  const events = useQuery({
    queryKey: ["events", ws, filters],
    // the window is measured from each fetch, so a polled list keeps sliding with the clock
    queryFn: async () => ok(await api.GET("/api/workspaces/{workspace_id}/events", { params: { path, query: eventsQuery(filters) } })),
    // react-query pauses the interval while the tab is hidden
    refetchInterval: EVENTS_POLL_MS,
    placeholderData: (previous) => previous,
  });
  const items = events.data?.items ?? [];
  return (
    <section className="page">
      <div className="page-head">
        <h1>Events</h1>
        <span className={`live ${events.isSuccess ? "on" : ""}`} role="status">
          {events.isSuccess ? "● Live" : "○ Connecting…"}
        </span>
      </div>
      <div className="filters" role="group" aria-label="Event filters">
        <label>
          Source
          <select value={filters.source} onChange={(e) => set({ source: e.target.value })}>
            <option value="">Any</option>
            {SOURCES.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Kind
          <input value={filters.kind} onChange={(e) => set({ kind: e.target.value })} list="event-kinds" placeholder="Any" maxLength={100} />
          <datalist id="event-kinds">
            {KINDS.map((k) => (
              <option key={k} value={k} />
            ))}
          </datalist>
        </label>
        <label>
          Account
          <select value={filters.account} onChange={(e) => set({ account: e.target.value })}>
            <option value="">Any</option>
            {(accounts.data ?? []).map((a) => (
              <option key={a.id} value={a.ig_user_id}>
                @{a.username}
              </option>
            ))}
          </select>
        </label>
        <label>
          Flow
          <select value={filters.flow} onChange={(e) => set({ flow: e.target.value })}>
            <option value="">All flows</option>
            {(flows.data?.items ?? []).map((f) => (
              <option key={f.id} value={f.id}>
                {f.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Outcome
          <select value={filters.outcome} onChange={(e) => set({ outcome: e.target.value })}>
            <option value="">Any</option>
            {OUTCOMES.map((o) => (
              <option key={o} value={o}>
                {outcomeText(o)}
              </option>
            ))}
          </select>
        </label>
        <label>
          Time
          <select value={filters.window} onChange={(e) => set({ window: e.target.value as TimeWindow })}>
            <option value="1h">Last hour</option>
            <option value="24h">Last 24 hours</option>
            <option value="7d">Last 7 days</option>
            <option value="all">Any time</option>
            <option value="custom">Between…</option>
          </select>
        </label>
        {filters.window === "custom" && (
          <>
            <label>
              From
              <input type="datetime-local" value={filters.from} onChange={(e) => set({ from: e.target.value })} />
            </label>
            <label>
              To
              <input type="datetime-local" value={filters.to} onChange={(e) => set({ to: e.target.value })} />
            </label>
          </>
        )}
      </div>
      <ErrorNote error={events.error} />
      {events.isSuccess && items.length === 0 && (
        <p className="empty">No events match. Webhooks and Instagram events appear here as they arrive, with what each one started.</p>
      )}
      {items.length > 0 && (
        <table className="grid" aria-label="Events">
          <thead>
            <tr>
              <th>Event</th>
              <th>Kind</th>
              <th>Received</th>
              <th>Outcome</th>
            </tr>
          </thead>
          <tbody>
            {items.map((e) => (
              <tr key={e.id} data-outcome={e.outcome} data-event={e.id}>
                <td className="preview">
                  <Link to={e.id}>{e.preview || "(no text)"}</Link>
                </td>
                <td className="mono">{e.kind}</td>
                <td title={e.received_at}>{timeAgo(e.received_at)}</td>
                <td>
                  <span className={`badge outcome-${e.outcome}`}>{outcomeText(e.outcome)}</span>
                  {e.outcome === "ran" && (
                    <span className="muted small"> {e.flows.filter((f) => f.ran).map((f) => f.flow_name).join(", ")}</span>
                  )}
                  {e.reason && e.outcome !== "ran" && <p className="reason small">{e.reason}</p>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {events.data && events.data.total > items.length && (
        <p className="muted small">
          Showing the newest {items.length} of {events.data.total} events; narrow the filters to see older ones.
        </p>
      )}
    </section>
  );
}
