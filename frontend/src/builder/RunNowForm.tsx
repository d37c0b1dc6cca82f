import { useState, type FormEvent } from "react";
import { useMutation, useQuery } from "@tanstack/react-query";
import { api, ok, type Flow } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { eventLabel, eventSample, parsePayload } from "../events/events";
import { sampleText } from "../instagram/samples";

interface Props {
  flow: Flow;
  workspaceId: string;
  /** The live version's trigger kind (an Instagram or webhook trigger). */
  trigger: string;
  pending: boolean;
  onRun: (payload: Record<string, unknown>) => void;
}

const EVENT = "event:";
const SAMPLE = "sample:";

/** Asks which event a run of an event-triggered flow starts from: a past event of the flow, a
 * sample Instagram event, or JSON of one's own. */
export function RunNowForm({ flow, workspaceId, trigger, pending, onRun }: Props) {
  const path = { workspace_id: workspaceId };
  const [picked, setPicked] = useState("");
  const [text, setText] = useState("{}");
  const instagram = trigger.startsWith("instagram.");
  const recent = useQuery({
    queryKey: ["events", workspaceId, "of-flow", flow.id],
    queryFn: async () =>
      ok(await api.GET("/api/workspaces/{workspace_id}/events", { params: { path, query: { flow_id: flow.id, limit: 10 } } })),
    staleTime: 10_000,
  });
  const samples = useQuery({
    queryKey: ["ig-sample-events", workspaceId],
    queryFn: async () => ok(await api.GET("/api/workspaces/{workspace_id}/instagram/sample-events", { params: { path } })),
    enabled: instagram,
    staleTime: 60_000,
  });
  const loadEvent = useMutation({
    mutationFn: async (eventId: string) =>
      ok(await api.GET("/api/workspaces/{workspace_id}/events/{event_id}", { params: { path: { ...path, event_id: eventId } } })),
    onSuccess: (event) => {
      const sample = eventSample(event.sample);
      if (sample) setText(sampleText(sample));
    },
  });
  const pick = (value: string) => {
    setPicked(value);
    if (value.startsWith(EVENT)) loadEvent.mutate(value.slice(EVENT.length));
    const sample = value.startsWith(SAMPLE) ? samples.data?.[Number(value.slice(SAMPLE.length))] : undefined;
    if (sample) setText(sampleText(sample));
  };
  const parsed = parsePayload(text);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if ("payload" in parsed) onRun(parsed.payload);
  };
  const events = recent.data?.items ?? [];
  return (
    <form className="popover" onSubmit={submit} aria-label="Run now">
      <p className="small">
        This flow starts from {instagram ? "an Instagram event" : "a webhook request"}: pick one to run the live version with.
      </p>
      <label>
        Start from
        <select value={picked} onChange={(e) => pick(e.target.value)}>
          <option value="">My own JSON (below)</option>
          {events.length > 0 && (
            <optgroup label="Recent events of this flow">
              {events.map((event) => (
                <option key={event.id} value={`${EVENT}${event.id}`}>
                  {eventLabel(event)}
                </option>
              ))}
            </optgroup>
          )}
          {instagram && (samples.data ?? []).length > 0 && (
            <optgroup label="Sample events">
              {(samples.data ?? []).map((sample, index) => (
                <option key={`${sample.kind}-${index}`} value={`${SAMPLE}${index}`}>
                  {sample.label}
                </option>
              ))}
            </optgroup>
          )}
        </select>
      </label>
      <label>
        Event payload (JSON)
        <textarea rows={8} className="mono" spellCheck={false} value={text} onChange={(e) => setText(e.target.value)} />
      </label>
      {"error" in parsed && <p className="error">{parsed.error}</p>}
      <ErrorNote error={recent.error ?? samples.error ?? loadEvent.error} />
      <button type="submit" className="primary" disabled={pending || "error" in parsed || loadEvent.isPending}>
        Run the live version
      </button>
    </form>
  );
}
