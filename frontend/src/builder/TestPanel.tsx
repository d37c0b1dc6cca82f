import { useEffect, useMemo, useState } from "react";
import { useMutation, useQuery } from "@tanstack/react-query";
import { api, errorText, ok, type Flow } from "../api/client";
import { eventLabel, eventSample, filterRefusal } from "../events/events";
import { ErrorNote } from "../components/ErrorNote";
import { StatusBadge, duration } from "../components/Status";
import { instagramTriggerSample, preselected, sampleText, usesInstagram } from "../instagram/samples";
import { useRunStream, type StreamMessage } from "../live";
import { useNodeTypes } from "../state";
import { nodeTitle, type EditorGraph } from "./graph";
import type { NodeRunState } from "./SfNode";
import { TestLedger } from "./TestLedger";

const DONE = new Set(["completed", "failed", "cancelled", "crashed"]);

function initialSample(graph: EditorGraph): string {
  const trigger = graph.nodes.find((n) => n.data.kind === "trigger.manual");
  const sample = trigger?.data.config.sample;
  return JSON.stringify(sample && typeof sample === "object" ? sample : { text: "hello" }, null, 2);
}

interface Props {
  flow: Flow;
  graph: EditorGraph;
  workspaceId: string;
  readOnly: boolean;
  beforeRun: () => Promise<boolean>;
  onSample: (sample: Record<string, unknown>) => void;
  onRuns: (runs: Map<string, NodeRunState>) => void;
  /** An event of the event log to test with, chosen there ("Test the draft with it"). */
  initialEvent?: string;
}

const EVENT = "event:";

/** Runs the draft in the sandbox with a sample payload and lights nodes up as they run. */
export function TestPanel({ flow, graph, workspaceId, readOnly, beforeRun, onSample, onRuns, initialEvent }: Props) {
  const [text, setText] = useState(() => initialSample(graph));
  // the text of the chosen sample as loaded, to tell when it has been edited since
  const [pickedText, setPickedText] = useState<string>();
  const [ignoreFilters, setIgnoreFilters] = useState(false);
  const [parseError, setParseError] = useState("");
  const [executionId, setExecutionId] = useState<string>();
  const [status, setStatus] = useState<string>();
  const [tick, setTick] = useState(0);
  const [picked, setPicked] = useState(initialEvent ? `${EVENT}${initialEvent}` : "");
  // once the user picks or types, the trigger's own sample no longer replaces their payload
  const [edited, setEdited] = useState(Boolean(initialEvent));
  const kinds = useNodeTypes();
  const nodeKinds = useMemo(() => graph.nodes.map((n) => n.data.kind), [graph.nodes]);
  const triggerSample = instagramTriggerSample(nodeKinds, (kind) => kinds.data?.byKind.get(kind)?.category);

  const samples = useQuery({
    queryKey: ["ig-sample-events", workspaceId],
    queryFn: async () =>
      ok(await api.GET("/api/workspaces/{workspace_id}/instagram/sample-events", { params: { path: { workspace_id: workspaceId } } })),
    enabled: Boolean(triggerSample),
    staleTime: 60_000,
  });

  // the flow's recent events of the event log, offered as samples too
  const recent = useQuery({
    queryKey: ["events", workspaceId, "of-flow", flow.id],
    queryFn: async () =>
      ok(
        await api.GET("/api/workspaces/{workspace_id}/events", {
          params: { path: { workspace_id: workspaceId }, query: { flow_id: flow.id, limit: 10 } },
        }),
      ),
    staleTime: 10_000,
  });
  const recentEvents = recent.data?.items ?? [];

  const load = (value: string, loaded: string) => {
    setText(loaded);
    setPickedText(loaded);
    setPicked(value);
  };

  // the trigger's own kind of sample replaces the default payload until the user changes it
  useEffect(() => {
    if (edited || !samples.data) return;
    const sample = preselected(samples.data, triggerSample);
    if (!sample) return;
    load(String(samples.data.indexOf(sample)), sampleText(sample));
  }, [samples.data, triggerSample, edited]);

  const loadEvent = useMutation({
    mutationFn: async (eventId: string) =>
      ok(await api.GET("/api/workspaces/{workspace_id}/events/{event_id}", { params: { path: { workspace_id: workspaceId, event_id: eventId } } })),
    onSuccess: (event) => {
      const sample = eventSample(event.sample);
      if (sample) load(`${EVENT}${event.id}`, sampleText(sample));
    },
  });
  const { mutate: fetchEvent } = loadEvent;
  useEffect(() => {
    if (initialEvent) fetchEvent(initialEvent);
  }, [initialEvent, fetchEvent]);

  const pick = (value: string) => {
    setPicked(value);
    setEdited(true);
    if (value.startsWith(EVENT)) {
      loadEvent.mutate(value.slice(EVENT.length));
      return;
    }
    const sample = samples.data?.[Number(value)];
    if (value !== "" && sample) load(value, sampleText(sample));
    else setPickedText(undefined);
  };
  const changed = picked !== "" && pickedText !== undefined && text !== pickedText;

  useEffect(() => {
    try {
      const parsed = JSON.parse(text) as unknown;
      if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("The payload must be a JSON object.");
      setParseError("");
      onSample(parsed as Record<string, unknown>);
    } catch (error) {
      setParseError(errorText(error));
    }
  }, [text, onSample]);

  const run = useMutation({
    mutationFn: async (ignore: boolean) => {
      if (!(await beforeRun())) throw new Error("The draft could not be saved; the test did not start.");
      return ok(
        await api.POST("/api/workspaces/{workspace_id}/flows/{flow_id}/test", {
          params: { path: { workspace_id: workspaceId, flow_id: flow.id } },
          body: { payload: JSON.parse(text) as Record<string, unknown>, ...(ignore ? { ignore_filters: true } : {}) },
        }),
      );
    },
    onSuccess: (queued) => {
      onRuns(new Map());
      setStatus("queued");
      setExecutionId(queued.execution_id);
    },
  });

  const detail = useQuery({
    queryKey: ["execution", workspaceId, executionId, tick],
    queryFn: async () =>
      ok(
        await api.GET("/api/workspaces/{workspace_id}/executions/{execution_id}", {
          params: { path: { workspace_id: workspaceId, execution_id: executionId! } },
        }),
      ),
    enabled: Boolean(executionId),
    placeholderData: (previous) => previous,
  });

  useEffect(() => {
    if (!detail.data) return;
    setStatus(detail.data.status);
    onRuns(new Map(detail.data.node_runs.map((n) => [n.node_id, { status: n.status, error: n.error, duration_ms: n.duration_ms }])));
  }, [detail.data, onRuns]);

  const connected = useRunStream(
    workspaceId,
    (message: StreamMessage) => {
      if (message.type === "execution") {
        setStatus(message.status);
        setTick((t) => t + 1);
      } else if (message.type === "node") {
        if (DONE.has(message.status) || message.status === "skipped") setTick((t) => t + 1);
        else setStatus("running");
      }
    },
    executionId,
    Boolean(executionId),
  );

  const nodes = detail.data?.node_runs ?? [];
  const refusal = filterRefusal(run.error);
  const offered = new Set(recentEvents.map((e) => `${EVENT}${e.id}`));
  return (
    <div className="panel">
      {(triggerSample || recentEvents.length > 0 || initialEvent) && (
        <label>
          <span>
            Sample event {changed && <span className="badge edited">edited</span>}
          </span>
          <select value={picked} onChange={(e) => pick(e.target.value)}>
            <option value="">My own JSON (paste or edit below)</option>
            {triggerSample &&
              (samples.data ?? []).map((sample, index) => (
                <option key={`${sample.kind}-${index}`} value={String(index)}>
                  {sample.label}
                </option>
              ))}
            {(recentEvents.length > 0 || (picked.startsWith(EVENT) && !offered.has(picked))) && (
              <optgroup label="Recent events of this flow">
                {picked.startsWith(EVENT) && !offered.has(picked) && <option value={picked}>The event from the event log</option>}
                {recentEvents.map((event) => (
                  <option key={event.id} value={`${EVENT}${event.id}`}>
                    {eventLabel(event)}
                  </option>
                ))}
              </optgroup>
            )}
          </select>
        </label>
      )}
      <ErrorNote error={samples.error ?? loadEvent.error} />
      <label>
        Sample payload (JSON)
        <textarea
          rows={triggerSample ? 12 : 7}
          value={text}
          onChange={(e) => {
            setEdited(true);
            setText(e.target.value);
          }}
          spellCheck={false}
          className="mono"
        />
      </label>
      {parseError && <p className="error">{parseError}</p>}
      {!readOnly && (
        <button type="button" className="primary" disabled={Boolean(parseError) || run.isPending} onClick={() => run.mutate(ignoreFilters)}>
          Run test (sandbox)
        </button>
      )}
      {!readOnly && (refusal || ignoreFilters) && (
        <label className="check">
          <input
            type="checkbox"
            checked={ignoreFilters}
            onChange={(e) => {
              setIgnoreFilters(e.target.checked);
              if (e.target.checked && !parseError) run.mutate(true);
            }}
          />
          Ignore filters (run the draft on this sample anyway)
        </label>
      )}
      <p className="muted small">Tests run the saved draft in sandbox: Instagram actions and HTTP requests are recorded, not sent.</p>
      {refusal ? (
        <p className="error" role="alert">
          This sample would not start the flow: {refusal}
        </p>
      ) : (
        <ErrorNote error={run.error ?? detail.error} />
      )}
      {executionId && (
        <div className="test-result" aria-live="polite">
          <p>
            Test run {status && <StatusBadge status={status} />} {connected ? "" : <span className="muted">(reconnecting…)</span>}
          </p>
          {detail.data?.error && <p className="error">{detail.data.error}</p>}
          {usesInstagram(nodeKinds) && (
            <TestLedger workspaceId={workspaceId} executionId={executionId} finished={Boolean(status && DONE.has(status))} />
          )}
          <ol className="node-results">
            {nodes.map((n) => (
              <li key={n.node_id}>
                <strong>{nodeTitle(n, kinds.data?.byKind)}</strong> <StatusBadge status={n.status} /> <span className="muted">{duration(n.duration_ms)}</span>
                {n.error && <p className="error">{n.error}</p>}
                {n.output != null && <pre className="mono">{JSON.stringify(n.output, null, 2)}</pre>}
              </li>
            ))}
          </ol>
        </div>
      )}
    </div>
  );
}
