import { useState } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api, ok, type Schemas } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";

type Detail = Schemas["ContactDetail"];

/** Durations offered for a takeover, in minutes; null: until released. */
export const TAKEOVER_CHOICES: { label: string; minutes: number | null }[] = [
  { label: "30 minutes", minutes: 30 },
  { label: "2 hours", minutes: 120 },
  { label: "24 hours", minutes: 1440 },
  { label: "Until released", minutes: null },
];

/** What the profile says about automation for this contact. */
export function takeoverText(c: Pick<Detail, "taken_over" | "takeover_until">): string {
  if (!c.taken_over) return "on: flows answer this contact";
  if (!c.takeover_until) return "paused: a person took over, until released";
  return `paused: a person took over, until ${new Date(c.takeover_until).toLocaleString()}`;
}

/** "Human takes over": pauses the flows for one contact, for a time or until released. */
export function Takeover({ ws, contact, canEdit }: { ws: string; contact: Detail; canEdit: boolean }) {
  const queries = useQueryClient();
  const [choice, setChoice] = useState(0);
  const path = { workspace_id: ws, contact_id: contact.id };
  const done = (data: Detail) => {
    queries.setQueryData(["contact", ws, contact.id], data);
    void queries.invalidateQueries({ queryKey: ["contacts", ws] });
  };
  const take = useMutation({
    mutationFn: async () =>
      ok(
        await api.POST("/api/workspaces/{workspace_id}/contacts/{contact_id}/takeover", {
          params: { path },
          body: { minutes: TAKEOVER_CHOICES[choice]?.minutes ?? null },
        }),
      ),
    onSuccess: done,
  });
  const release = useMutation({
    mutationFn: async () =>
      ok(await api.DELETE("/api/workspaces/{workspace_id}/contacts/{contact_id}/takeover", { params: { path } })),
    onSuccess: done,
  });
  return (
    <div className="takeover" aria-label="Automation">
      <p data-taken-over={contact.taken_over ? "true" : "false"}>
        <strong>Automation</strong> {takeoverText(contact)}
      </p>
      {canEdit && !contact.taken_over && (
        <div className="inline">
          <select aria-label="Take over for" value={choice} onChange={(e) => setChoice(Number(e.target.value))}>
            {TAKEOVER_CHOICES.map((c, i) => (
              <option key={c.label} value={i}>
                {c.label}
              </option>
            ))}
          </select>
          <button type="button" onClick={() => take.mutate()} disabled={take.isPending}>
            Human takes over
          </button>
        </div>
      )}
      {canEdit && contact.taken_over && (
        <button type="button" onClick={() => release.mutate()} disabled={release.isPending}>
          Release to the flows
        </button>
      )}
      <ErrorNote error={take.error ?? release.error} />
      {canEdit && <LiveReply ws={ws} contact={contact} />}
    </div>
  );
}

/** A DM from the app, through the send ledger: Meta's window decides, the same message once. */
function LiveReply({ ws, contact }: { ws: string; contact: Detail }) {
  const queries = useQueryClient();
  const [text, setText] = useState("");
  const [humanAgent, setHumanAgent] = useState(false);
  const [clientId, setClientId] = useState(() => crypto.randomUUID());
  const send = useMutation({
    mutationFn: async () =>
      ok(
        await api.POST("/api/workspaces/{workspace_id}/contacts/{contact_id}/messages", {
          params: { path: { workspace_id: ws, contact_id: contact.id } },
          body: { text, client_id: clientId, human_agent: humanAgent },
        }),
      ),
    onSuccess: () => {
      // a new message gets a new id; a retry of a failed one keeps it, so it sends once
      setClientId(crypto.randomUUID());
      setText("");
      void queries.invalidateQueries({ queryKey: ["contact", ws, contact.id] });
    },
  });
  return (
    <form
      className="live-reply"
      aria-label="Reply"
      onSubmit={(e) => {
        e.preventDefault();
        if (text.trim()) send.mutate();
      }}
    >
      <textarea aria-label="Message" value={text} maxLength={1000} onChange={(e) => setText(e.target.value)} placeholder="Write a reply…" />
      <label className="small">
        <input type="checkbox" checked={humanAgent} onChange={(e) => setHumanAgent(e.target.checked)} /> Human agent tag (up to 7 days)
      </label>
      <button type="submit" disabled={!text.trim() || send.isPending}>
        Send
      </button>
      {send.data && <span className="muted small">{send.data.duplicate ? "already sent" : send.data.status}</span>}
      <ErrorNote error={send.error} />
    </form>
  );
}
