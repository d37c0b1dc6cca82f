import { useState } from "react";
import { Link } from "react-router-dom";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ok } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { timeAgo } from "../components/Status";
import { useWorkspace } from "../state";
import {
  NO_FILTERS,
  SOURCES,
  contactsQuery,
  displayName,
  exportUrl,
  parseTags,
  sourceText,
  toggle,
  windowText,
  type ContactFilters,
  type Seen,
} from "./contacts";

const PAGE = 50;
/** How often the list is refetched while the page is visible. */
export const CONTACTS_POLL_MS = 3000;

/** The people the workspace's Instagram accounts met: search, filters, bulk tags, export. */
export function Contacts() {
  const { id: ws, canEdit, isAdmin } = useWorkspace();
  const path = { workspace_id: ws };
  const queries = useQueryClient();
  const [filters, setFilters] = useState<ContactFilters>(NO_FILTERS);
  const [offset, setOffset] = useState(0);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [bulkTags, setBulkTags] = useState("");
  const set = (change: Partial<ContactFilters>) => {
    setFilters((f) => ({ ...f, ...change }));
    setOffset(0);
  };
  const contacts = useQuery({
    queryKey: ["contacts", ws, filters, offset],
    queryFn: async () =>
      ok(await api.GET("/api/workspaces/{workspace_id}/contacts", { params: { path, query: contactsQuery(filters, Date.now(), PAGE, offset) } })),
    // new people arrive with events: the list keeps up while it is visible
    refetchInterval: CONTACTS_POLL_MS,
    placeholderData: (previous) => previous,
  });
  const tags = useQuery({
    queryKey: ["contact-tags", ws],
    queryFn: async () => ok(await api.GET("/api/workspaces/{workspace_id}/contact-tags", { params: { path } })),
  });
  const bulk = useMutation({
    mutationFn: async (action: "add" | "remove") =>
      ok(
        await api.POST("/api/workspaces/{workspace_id}/contacts/bulk-tags", {
          params: { path },
          body: { action, tags: parseTags(bulkTags), ids: [...selected] },
        }),
      ),
    onSuccess: () => {
      setBulkTags("");
      void queries.invalidateQueries({ queryKey: ["contacts", ws] });
      void queries.invalidateQueries({ queryKey: ["contact-tags", ws] });
    },
  });
  const items = contacts.data?.items ?? [];
  const pageIds = items.map((c) => c.id);
  const allOnPage = pageIds.length > 0 && pageIds.every((id) => selected.has(id));
  return (
    <section className="page">
      <div className="page-head">
        <h1>Contacts</h1>
        {isAdmin && (
          <a className="button" href={exportUrl(ws, filters)} download="contacts.csv">
            Export CSV
          </a>
        )}
      </div>
      <div className="filters" role="group" aria-label="Contact filters">
        <label>
          Search
          <input value={filters.q} onChange={(e) => set({ q: e.target.value })} placeholder="Username or name" maxLength={100} />
        </label>
        <label>
          Tag
          <input value={filters.tag} onChange={(e) => set({ tag: e.target.value })} list="contact-tag-names" placeholder="Any" />
          <datalist id="contact-tag-names">
            {(tags.data ?? []).map((t) => (
              <option key={t.id} value={t.name} />
            ))}
          </datalist>
        </label>
        <label>
          Field
          <input value={filters.field} onChange={(e) => set({ field: e.target.value })} placeholder="key=value" maxLength={200} />
        </label>
        <label>
          Source
          <select value={filters.source} onChange={(e) => set({ source: e.target.value })}>
            <option value="">Any</option>
            {SOURCES.map((s) => (
              <option key={s} value={s}>
                {sourceText(s)}
              </option>
            ))}
          </select>
        </label>
        <label>
          Last seen
          <select value={filters.seen} onChange={(e) => set({ seen: e.target.value as Seen })}>
            <option value="any">Any time</option>
            <option value="24h">Last 24 hours</option>
            <option value="7d">Last 7 days</option>
            <option value="30d">Last 30 days</option>
          </select>
        </label>
        <label>
          24 h window
          <select value={filters.window} onChange={(e) => set({ window: e.target.value as ContactFilters["window"] })}>
            <option value="">Any</option>
            <option value="open">Open</option>
            <option value="closed">Closed</option>
          </select>
        </label>
      </div>
      {canEdit && (
        <div className="filters" role="group" aria-label="Tag selected contacts">
          <label>
            Tags for {selected.size} selected
            <input value={bulkTags} onChange={(e) => setBulkTags(e.target.value)} placeholder="lead, vip" aria-label="Tags to add or remove" />
          </label>
          <button type="button" disabled={!selected.size || !parseTags(bulkTags).length || bulk.isPending} onClick={() => bulk.mutate("add")}>
            Add tags
          </button>
          <button type="button" disabled={!selected.size || !parseTags(bulkTags).length || bulk.isPending} onClick={() => bulk.mutate("remove")}>
            Remove tags
          </button>
          {bulk.data && <span className="muted small">{bulk.data.matched} contacts changed</span>}
        </div>
      )}
      <ErrorNote error={contacts.error ?? bulk.error} />
      {contacts.isSuccess && items.length === 0 && (
        <p className="empty">No contacts match. A person becomes a contact when they comment, message, tap a button or come from an ad.</p>
      )}
      {items.length > 0 && (
        <table className="grid" aria-label="Contacts">
          <thead>
            <tr>
              <th>
                <input type="checkbox" aria-label="Select page" checked={allOnPage} onChange={(e) => setSelected(toggle(selected, pageIds, e.target.checked))} />
              </th>
              <th>Contact</th>
              <th>Tags</th>
              <th>Source</th>
              <th>Last seen</th>
              <th>Window</th>
            </tr>
          </thead>
          <tbody>
            {items.map((c) => (
              <tr key={c.id} data-contact={c.id}>
                <td>
                  <input
                    type="checkbox"
                    aria-label={`Select ${displayName(c)}`}
                    checked={selected.has(c.id)}
                    onChange={(e) => setSelected(toggle(selected, [c.id], e.target.checked))}
                  />
                </td>
                <td>
                  <Link to={c.id}>{displayName(c)}</Link>
                  {c.opted_out && <span className="badge"> opted out</span>}
                </td>
                <td className="tags">
                  {c.tags.map((t) => (
                    <span key={t} className="badge tag">
                      {t}
                    </span>
                  ))}
                </td>
                <td>{sourceText(c.source)}</td>
                <td title={c.last_seen_at}>{timeAgo(c.last_seen_at)}</td>
                <td>{windowText(c.window)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {contacts.data && contacts.data.total > PAGE && (
        <div className="pager">
          <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>
            Previous
          </button>
          <span className="muted small">
            {offset + 1}–{offset + items.length} of {contacts.data.total}
          </span>
          <button type="button" disabled={offset + PAGE >= contacts.data.total} onClick={() => setOffset(offset + PAGE)}>
            Next
          </button>
        </div>
      )}
    </section>
  );
}
