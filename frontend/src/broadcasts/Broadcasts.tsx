import { useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ok } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { useWorkspace } from "../state";
import { NO_SEGMENT, REASON_TEXT, bytes, share, toSegment, type Broadcast, type SegmentForm } from "./broadcasts";

const SOURCES = ["comment", "live_comment", "dm", "story_reply", "story_mention", "postback", "referral", "ad"];
/** How often a sending broadcast's progress is read. */
export const PROGRESS_POLL_MS = 2000;

/** Compose a message to a segment, preview who it reaches and why not the others, send it
 * now or at a time, follow its progress and results. */
export function Broadcasts() {
  const { id: ws, canEdit } = useWorkspace();
  const path = { workspace_id: ws };
  const queries = useQueryClient();
  const [account, setAccount] = useState("");
  const [name, setName] = useState("");
  const [text, setText] = useState("");
  const [form, setForm] = useState<SegmentForm>(NO_SEGMENT);
  const [at, setAt] = useState("");
  const [open, setOpen] = useState<string | null>(null);
  const accounts = useQuery({
    queryKey: ["ig-accounts", ws],
    queryFn: async () => ok(await api.GET("/api/workspaces/{workspace_id}/instagram/accounts", { params: { path } })),
  });
  const chosen = account || accounts.data?.[0]?.id || "";
  const list = useQuery({
    queryKey: ["broadcasts", ws],
    queryFn: async () => ok(await api.GET("/api/workspaces/{workspace_id}/broadcasts", { params: { path } })),
    refetchInterval: PROGRESS_POLL_MS,
  });
  const preview = useMutation({
    mutationFn: async () =>
      ok(
        await api.POST("/api/workspaces/{workspace_id}/broadcasts/preview", {
          params: { path },
          body: { account_id: chosen, segment: toSegment(form, Date.now()) },
        }),
      ),
  });
  const send = useMutation({
    mutationFn: async () => {
      const created = ok(
        await api.POST("/api/workspaces/{workspace_id}/broadcasts", {
          params: { path },
          body: { account_id: chosen, name, text, segment: toSegment(form, Date.now()) },
        }),
      );
      return ok(
        await api.POST("/api/workspaces/{workspace_id}/broadcasts/{broadcast_id}/send", {
          params: { path: { ...path, broadcast_id: created.id } },
          body: { at: at ? new Date(at).toISOString() : null },
        }),
      );
    },
    onSuccess: (sent) => {
      setOpen(sent.id);
      setText("");
      void queries.invalidateQueries({ queryKey: ["broadcasts", ws] });
    },
  });
  const set = (change: Partial<SegmentForm>) => {
    setForm((f) => ({ ...f, ...change }));
    preview.reset();
  };
  return (
    <section className="page">
      <div className="page-head">
        <h1>Broadcasts</h1>
      </div>
      {canEdit && (
        <form
          className="card"
          aria-label="New broadcast"
          onSubmit={(e) => {
            e.preventDefault();
            send.mutate();
          }}
        >
          <h2>New broadcast</h2>
          <label>
            Account
            <select value={chosen} onChange={(e) => setAccount(e.target.value)}>
              {(accounts.data ?? []).map((a) => (
                <option key={a.id} value={a.id}>
                  @{a.username}
                </option>
              ))}
            </select>
          </label>
          <label>
            Name
            <input value={name} maxLength={100} required onChange={(e) => setName(e.target.value)} />
          </label>
          <label>
            Message <small>{bytes(text)} / 1000 bytes</small>
            <textarea value={text} required rows={4} onChange={(e) => setText(e.target.value)} />
          </label>
          <fieldset>
            <legend>Segment</legend>
            <label>
              Any of the tags
              <input value={form.tagsAny} placeholder="vip, lead" onChange={(e) => set({ tagsAny: e.target.value })} />
            </label>
            <label>
              All of the tags
              <input value={form.tagsAll} onChange={(e) => set({ tagsAll: e.target.value })} />
            </label>
            <label>
              Fields (key=value, one a line)
              <textarea value={form.fields} rows={2} onChange={(e) => set({ fields: e.target.value })} />
            </label>
            <label>
              Last seen within
              <select value={form.seenDays} onChange={(e) => set({ seenDays: Number(e.target.value) })}>
                <option value={0}>any time</option>
                <option value={1}>24 hours</option>
                <option value={7}>7 days</option>
                <option value={30}>30 days</option>
              </select>
            </label>
            <label>
              Source
              <select value={form.source} onChange={(e) => set({ source: e.target.value })}>
                <option value="">any</option>
                {SOURCES.map((s) => (
                  <option key={s} value={s}>
                    {s}
                  </option>
                ))}
              </select>
            </label>
          </fieldset>
          <button type="button" disabled={!chosen} onClick={() => preview.mutate()}>
            Preview
          </button>
          {preview.data && (
            <div aria-label="Preview" className="preview">
              <p>
                <strong>{preview.data.eligible}</strong> of {preview.data.total} contacts will receive it.
              </p>
              <ul>
                {Object.entries(preview.data.skipped)
                  .filter(([, n]) => n > 0)
                  .map(([reason, n]) => (
                    <li key={reason} title={preview.data.reasons[reason]}>
                      {REASON_TEXT[reason] ?? reason}: {n}
                    </li>
                  ))}
              </ul>
            </div>
          )}
          <label>
            Send at (empty: now)
            <input type="datetime-local" value={at} onChange={(e) => setAt(e.target.value)} />
          </label>
          <button type="submit" disabled={!chosen || send.isPending}>
            {at ? "Schedule" : "Send now"}
          </button>
          <ErrorNote error={preview.error ?? send.error} />
        </form>
      )}
      <ErrorNote error={list.error} />
      <table className="table">
        <thead>
          <tr>
            <th>Name</th>
            <th>Status</th>
            <th>When</th>
            <th>Recipients</th>
          </tr>
        </thead>
        <tbody>
          {(list.data?.items ?? []).map((b) => (
            <tr key={b.id} onClick={() => setOpen(open === b.id ? null : b.id)}>
              <td>{b.name}</td>
              <td>{b.status}</td>
              <td>{b.scheduled_at ? new Date(b.scheduled_at).toLocaleString() : "—"}</td>
              <td>{b.total ?? "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {open && <Progress ws={ws} id={open} canEdit={canEdit} />}
    </section>
  );
}

function Progress({ ws, id, canEdit }: { ws: string; id: string; canEdit: boolean }) {
  const path = { workspace_id: ws, broadcast_id: id };
  const queries = useQueryClient();
  const detail = useQuery({
    queryKey: ["broadcast", ws, id],
    queryFn: async () => ok(await api.GET("/api/workspaces/{workspace_id}/broadcasts/{broadcast_id}", { params: { path } })),
    refetchInterval: (q) => (q.state.data && ["scheduled", "sending"].includes(q.state.data.status) ? PROGRESS_POLL_MS : false),
  });
  const people = useQuery({
    queryKey: ["broadcast-recipients", ws, id, detail.data?.progress.handled],
    queryFn: async () =>
      ok(await api.GET("/api/workspaces/{workspace_id}/broadcasts/{broadcast_id}/recipients", { params: { path, query: { limit: 100 } } })),
  });
  const cancel = useMutation({
    mutationFn: async () =>
      ok(await api.POST("/api/workspaces/{workspace_id}/broadcasts/{broadcast_id}/cancel", { params: { path } })),
    onSuccess: () => void queries.invalidateQueries({ queryKey: ["broadcast", ws, id] }),
  });
  const b = detail.data;
  if (!b) return <ErrorNote error={detail.error} />;
  return (
    <div className="card" aria-label="Broadcast progress">
      <h2>{b.name}</h2>
      <p>
        {b.status} · sent {b.progress.sent} · failed {b.progress.failed} · {Math.round(share(b) * 100)} %
      </p>
      <progress max={1} value={share(b)} />
      <ul aria-label="Skipped">
        {Object.entries(b.progress.skipped).map(([reason, n]) => (
          <li key={reason}>
            {REASON_TEXT[reason] ?? reason}: {n}
          </li>
        ))}
      </ul>
      {canEdit && ["scheduled", "sending"].includes(b.status) && (
        <button type="button" onClick={() => cancel.mutate()}>
          Cancel
        </button>
      )}
      <table className="table" aria-label="Recipients">
        <tbody>
          {(people.data?.items ?? []).map((r) => (
            <tr key={r.contact_id}>
              <td>{r.username ?? r.igsid}</td>
              <td>{r.status}</td>
              <td>{r.reason ? (REASON_TEXT[r.reason] ?? r.reason) : ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <ErrorNote error={cancel.error} />
    </div>
  );
}

export type { Broadcast };
