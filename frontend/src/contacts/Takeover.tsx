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
    </div>
  );
}
