import { useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ok, type Schemas } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { timeAgo } from "../components/Status";
import { useWorkspace } from "../state";
import { Takeover } from "./Takeover";
import { displayName, fieldInput, fieldText, inputType, parseTags, sourceText, timelineText, windowText } from "./contacts";

type Update = Schemas["ContactUpdate"];

/** One contact: profile, tags and fields to edit, and the timeline of everything with them. */
export function ContactProfile() {
  const { id: ws, canEdit, isAdmin } = useWorkspace();
  const { contactId = "" } = useParams();
  const navigate = useNavigate();
  const queries = useQueryClient();
  const path = { workspace_id: ws, contact_id: contactId };
  const [newTags, setNewTags] = useState("");
  const [edits, setEdits] = useState<Record<string, string>>({});
  const contact = useQuery({
    queryKey: ["contact", ws, contactId],
    queryFn: async () => ok(await api.GET("/api/workspaces/{workspace_id}/contacts/{contact_id}", { params: { path } })),
    // runs and messages join the timeline as they happen
    refetchInterval: 3000,
  });
  const fields = useQuery({
    queryKey: ["contact-fields", ws],
    queryFn: async () => ok(await api.GET("/api/workspaces/{workspace_id}/contact-fields", { params: { path: { workspace_id: ws } } })),
  });
  const update = useMutation({
    mutationFn: async (body: Update) =>
      ok(await api.PATCH("/api/workspaces/{workspace_id}/contacts/{contact_id}", { params: { path }, body: { add_tags: [], remove_tags: [], fields: {}, ...body } })),
    onSuccess: (data) => {
      queries.setQueryData(["contact", ws, contactId], data);
      void queries.invalidateQueries({ queryKey: ["contacts", ws] });
      setNewTags("");
      setEdits({});
    },
  });
  const erase = useMutation({
    mutationFn: async () => ok(await api.DELETE("/api/workspaces/{workspace_id}/contacts/{contact_id}", { params: { path } })),
    onSuccess: () => {
      void queries.invalidateQueries({ queryKey: ["contacts", ws] });
      navigate(`/w/${ws}/contacts`);
    },
  });
  const c = contact.data;
  if (!c) return <section className="page"><ErrorNote error={contact.error} />{contact.isPending && <p className="muted">Loading…</p>}</section>;
  const changedFields = Object.fromEntries(
    Object.entries(edits).map(([key, text]) => [key, fieldInput(fields.data?.find((f) => f.key === key)?.type ?? "text", text)]),
  );
  return (
    <section className="page">
      <p className="muted small">
        <Link to="..">Contacts</Link>
      </p>
      <div className="page-head">
        {c.profile_pic && <img className="avatar" src={c.profile_pic} alt="" width={48} height={48} referrerPolicy="no-referrer" />}
        <h1>{displayName(c)}</h1>
        {c.opted_out && <span className="badge">opted out</span>}
      </div>
      <dl className="facts">
        <dt>First came by</dt>
        <dd>{sourceText(c.source)}</dd>
        <dt>First seen</dt>
        <dd title={c.first_seen_at}>{timeAgo(c.first_seen_at)}</dd>
        <dt>Last seen</dt>
        <dd title={c.last_seen_at}>{timeAgo(c.last_seen_at)}</dd>
        <dt>24 h window</dt>
        <dd data-window={c.window.open ? "open" : "closed"}>{windowText(c.window)}</dd>
        <dt>Instagram id</dt>
        <dd className="mono">{c.igsid}</dd>
        {c.profile_error && (
          <>
            <dt>Profile</dt>
            <dd className="muted small">not read from Instagram: {c.profile_error}</dd>
          </>
        )}
      </dl>
      <Takeover ws={ws} contact={c} canEdit={canEdit} />
      <h2>Tags</h2>
      <div className="tags" aria-label="Tags">
        {c.tags.length === 0 && <span className="muted">No tags.</span>}
        {c.tags.map((t) => (
          <span key={t} className="badge tag">
            {t}
            {canEdit && (
              <button type="button" className="link" aria-label={`Remove tag ${t}`} onClick={() => update.mutate({ remove_tags: [t] })}>
                ×
              </button>
            )}
          </span>
        ))}
      </div>
      {canEdit && (
        <form
          className="inline"
          onSubmit={(e) => {
            e.preventDefault();
            if (parseTags(newTags).length) update.mutate({ add_tags: parseTags(newTags) });
          }}
        >
          <input value={newTags} onChange={(e) => setNewTags(e.target.value)} placeholder="lead, vip" aria-label="New tags" />
          <button type="submit" disabled={!parseTags(newTags).length || update.isPending}>
            Add tags
          </button>
        </form>
      )}
      <h2>Fields</h2>
      {(fields.data ?? []).length === 0 && <p className="muted">No custom fields are defined in this workspace.</p>}
      {(fields.data ?? []).length > 0 && (
        <form
          className="fields"
          onSubmit={(e) => {
            e.preventDefault();
            update.mutate({ fields: changedFields });
          }}
        >
          {(fields.data ?? []).map((f) => (
            <label key={f.id}>
              {f.label} <span className="muted small">({f.type})</span>
              {f.type === "choice" ? (
                <select
                  disabled={!canEdit}
                  value={edits[f.key] ?? fieldText(c.fields[f.key])}
                  onChange={(e) => setEdits({ ...edits, [f.key]: e.target.value })}
                >
                  <option value="">—</option>
                  {f.choices.map((choice) => (
                    <option key={choice}>{choice}</option>
                  ))}
                </select>
              ) : (
                <input
                  disabled={!canEdit}
                  type={inputType(f.type)}
                  value={edits[f.key] ?? fieldText(c.fields[f.key])}
                  onChange={(e) => setEdits({ ...edits, [f.key]: e.target.value })}
                  maxLength={2000}
                />
              )}
            </label>
          ))}
          {canEdit && (
            <button type="submit" disabled={!Object.keys(edits).length || update.isPending}>
              Save fields
            </button>
          )}
        </form>
      )}
      <ErrorNote error={update.error ?? erase.error} />
      <h2>Timeline</h2>
      {c.timeline.length === 0 && <p className="muted">Nothing yet.</p>}
      <ol className="timeline" aria-label="Timeline">
        {c.timeline.map((item) => (
          <li key={`${item.type}-${item.id}`} data-type={item.type} data-direction={item.direction ?? ""}>
            <span className="muted small" title={item.at}>
              {timeAgo(item.at)}
            </span>{" "}
            {item.type === "run" && item.execution_id ? (
              <Link to={`/w/${ws}/runs/${item.execution_id}`}>{timelineText(item)}</Link>
            ) : (
              <span>{timelineText(item)}</span>
            )}
          </li>
        ))}
      </ol>
      {isAdmin && (
        <p>
          <button
            type="button"
            className="danger"
            disabled={erase.isPending}
            onClick={() => {
              if (window.confirm("Erase this contact? Their tags and fields are deleted and their messages are replaced by [erased] everywhere.")) erase.mutate();
            }}
          >
            Erase contact
          </button>
        </p>
      )}
    </section>
  );
}
