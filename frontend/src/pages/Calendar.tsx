import { useMemo, useState, type DragEvent, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, csrfHeaders, describeError, ok, type Schemas } from "../api/client";
import { byDay, dayKey, gridRange, monthGrid, movable, movedTo, postNote } from "../calendar/month";
import { ErrorNote } from "../components/ErrorNote";
import { useWorkspace } from "../state";

type Post = Schemas["PostRead"];
type Media = Schemas["MediaRead"];
type PostType = Schemas["PostCreate"]["type"];

const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/** Uploads one file to the workspace's media library; the API's refusal in words. */
async function uploadMedia(ws: string, file: File): Promise<Media> {
  const form = new FormData();
  form.append("file", file, file.name);
  const response = await fetch(`/api/workspaces/${ws}/posts/media`, {
    method: "POST",
    body: form,
    credentials: "same-origin",
    headers: csrfHeaders("POST"),
  });
  const body: unknown = await response.json().catch(() => undefined);
  if (!response.ok) throw describeError(response.status, body);
  return body as Media;
}

/** The content calendar: a month of posts per account, drag a post to another day to
 * reschedule it, and a form to write and schedule a new one. */
export function Calendar() {
  const { id: ws, canEdit } = useWorkspace();
  const queries = useQueryClient();
  const path = { workspace_id: ws };
  const today = new Date();
  const [month, setMonth] = useState({ year: today.getFullYear(), month: today.getMonth() });
  const [account, setAccount] = useState("");
  const weeks = useMemo(() => monthGrid(month.year, month.month), [month]);
  const range = gridRange(weeks);
  const accounts = useQuery({
    queryKey: ["ig-accounts", ws],
    queryFn: async () => ok(await api.GET("/api/workspaces/{workspace_id}/instagram/accounts", { params: { path } })),
  });
  const posts = useQuery({
    queryKey: ["posts", ws, range.start, account],
    queryFn: async () =>
      ok(
        await api.GET("/api/workspaces/{workspace_id}/posts", {
          params: { path, query: { start: range.start, end: range.end, account_id: account || undefined } },
        }),
      ),
    refetchInterval: 5000,
  });
  const refresh = () => queries.invalidateQueries({ queryKey: ["posts", ws] });
  const reschedule = useMutation({
    mutationFn: async ({ post, day }: { post: Post; day: Date }) =>
      ok(
        await api.POST("/api/workspaces/{workspace_id}/posts/{post_id}/schedule", {
          params: { path: { ...path, post_id: post.id } },
          body: { scheduled_at: movedTo(post, day) },
        }),
      ),
    onSettled: () => void refresh(),
  });
  const items = posts.data?.items ?? [];
  const days = byDay(items);
  const label = new Date(month.year, month.month, 1).toLocaleDateString(undefined, { month: "long", year: "numeric" });
  const shift = (delta: number) => {
    const next = new Date(month.year, month.month + delta, 1);
    setMonth({ year: next.getFullYear(), month: next.getMonth() });
  };
  const onDrop = (event: DragEvent<HTMLTableCellElement>, day: Date) => {
    event.preventDefault();
    const post = items.find((p) => p.id === event.dataTransfer.getData("text/plain"));
    if (post && movable(post)) reschedule.mutate({ post, day });
  };
  return (
    <section className="page">
      <h1>Calendar</h1>
      <ErrorNote error={posts.error ?? accounts.error ?? reschedule.error} />
      <div className="row">
        <button type="button" onClick={() => shift(-1)} aria-label="Previous month">‹</button>
        <h2 aria-live="polite">{label}</h2>
        <button type="button" onClick={() => shift(1)} aria-label="Next month">›</button>
        <label>
          Account{" "}
          <select value={account} onChange={(e) => setAccount(e.target.value)}>
            <option value="">All accounts</option>
            {(accounts.data ?? []).map((a) => (
              <option key={a.id} value={a.id}>
                @{a.username}
              </option>
            ))}
          </select>
        </label>
      </div>
      <table className="calendar" aria-label={`Posts in ${label}`}>
        <thead>
          <tr>
            {WEEKDAYS.map((d) => (
              <th key={d}>{d}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {weeks.map((week) => (
            <tr key={dayKey(week[0])}>
              {week.map((day) => (
                <td
                  key={dayKey(day)}
                  data-day={dayKey(day)}
                  className={day.getMonth() === month.month ? "" : "muted"}
                  onDragOver={(e) => canEdit && e.preventDefault()}
                  onDrop={(e) => onDrop(e, day)}
                >
                  <div className="day-number">{day.getDate()}</div>
                  {(days.get(dayKey(day)) ?? []).map((post) => (
                    <PostChip key={post.id} post={post} draggable={canEdit && movable(post)} />
                  ))}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      {canEdit && <NewPost ws={ws} accounts={accounts.data ?? []} onDone={() => void refresh()} />}
    </section>
  );
}

function PostChip({ post, draggable }: { post: Post; draggable: boolean }) {
  const time = post.scheduled_at ? new Date(post.scheduled_at).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" }) : "";
  const note = postNote(post);
  return (
    <div
      className={`post-chip status-${post.status}`}
      data-post={post.id}
      draggable={draggable}
      onDragStart={(e) => e.dataTransfer.setData("text/plain", post.id)}
      title={post.caption}
    >
      <span>
        {time} {post.type} · <strong>{post.status}</strong>
      </span>
      {post.permalink && (
        <a href={post.permalink} target="_blank" rel="noreferrer">
          permalink
        </a>
      )}
      {note && <p className="muted small">{note}</p>}
    </div>
  );
}

function NewPost({ ws, accounts, onDone }: { ws: string; accounts: { id: string; username: string }[]; onDone: () => void }) {
  const [account, setAccount] = useState("");
  const [type, setType] = useState<PostType>("image");
  const [caption, setCaption] = useState("");
  const [when, setWhen] = useState("");
  const [files, setFiles] = useState<File[]>([]);
  const [result, setResult] = useState<Post>();
  const create = useMutation({
    mutationFn: async () => {
      const media = [];
      for (const file of files) media.push(await uploadMedia(ws, file));
      return ok(
        await api.POST("/api/workspaces/{workspace_id}/posts", {
          params: { path: { workspace_id: ws } },
          body: {
            account_id: account || accounts[0]?.id,
            type,
            caption,
            media_ids: media.map((m) => m.id),
            scheduled_at: when ? new Date(when).toISOString() : null,
          },
        }),
      );
    },
    onSuccess: (post) => {
      setResult(post);
      onDone();
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate();
  };
  return (
    <form className="card" onSubmit={submit} aria-label="New post">
      <h2>New post</h2>
      <label>
        Account
        <select value={account} onChange={(e) => setAccount(e.target.value)}>
          {accounts.map((a) => (
            <option key={a.id} value={a.id}>
              @{a.username}
            </option>
          ))}
        </select>
      </label>
      <label>
        Type
        <select value={type} onChange={(e) => setType(e.target.value as PostType)}>
          <option value="image">Image</option>
          <option value="carousel">Carousel (2–10)</option>
          <option value="reel">Reel</option>
          <option value="story">Story</option>
        </select>
      </label>
      <label>
        Caption <span className="muted">({caption.length} / 2,200)</span>
        <textarea value={caption} onChange={(e) => setCaption(e.target.value)} rows={3} />
      </label>
      <label>
        Media
        <input type="file" accept="image/jpeg,video/mp4,video/quicktime" multiple onChange={(e) => setFiles([...(e.target.files ?? [])])} />
      </label>
      <label>
        Publish at
        <input type="datetime-local" step={1} value={when} onChange={(e) => setWhen(e.target.value)} />
      </label>
      <button type="submit" disabled={create.isPending || !files.length || !accounts.length}>
        {when ? "Schedule" : "Save draft"}
      </button>
      <ErrorNote error={create.error} />
      {result && (
        <div role="status">
          <p>
            Post {result.status === "scheduled" ? "scheduled" : "saved as a draft"}.
          </p>
          {result.problems.length > 0 && (
            <ul className="error" aria-label="Problems">
              {result.problems.map((p, n) => (
                <li key={n}>
                  {p.field}: {p.message}
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
    </form>
  );
}
