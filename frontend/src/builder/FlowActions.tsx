import { useState, type FormEvent } from "react";
import { useNavigate } from "react-router-dom";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ok, type Flow, type GraphProblem } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { eventTrigger } from "../events/events";
import { useNodeTypes } from "../state";
import { RunNowForm } from "./RunNowForm";

interface Props {
  flow: Flow;
  workspaceId: string;
  problems: GraphProblem[];
  beforePublish: () => Promise<boolean>;
  onFailed: (error: unknown) => void;
}

/** Publish (with a version note), pause/resume and run-now of the live version. */
export function FlowActions({ flow, workspaceId, problems, beforePublish, onFailed }: Props) {
  const queries = useQueryClient();
  const navigate = useNavigate();
  const [note, setNote] = useState("");
  const [open, setOpen] = useState<"publish" | "replay" | "run" | null>(null);
  const kinds = useNodeTypes();
  // the live version's trigger decides whether a run now needs an event to start from
  const live = useQuery({
    queryKey: ["version", workspaceId, flow.id, flow.active_version],
    queryFn: async () =>
      ok(
        await api.GET("/api/workspaces/{workspace_id}/flows/{flow_id}/versions/{number}", {
          params: { path: { workspace_id: workspaceId, flow_id: flow.id, number: flow.active_version! } },
        }),
      ),
    enabled: flow.active_version != null,
    staleTime: Infinity,
  });
  const trigger = live.data
    ? eventTrigger(
        (live.data.graph.nodes ?? []).map((n) => n.kind),
        (kind) => kinds.data?.byKind.get(kind)?.category,
      )
    : undefined;
  const [last, setLast] = useState(20);
  const [published, setPublished] = useState<number | null>(null);
  const path = { workspace_id: workspaceId, flow_id: flow.id };
  const refresh = (next: Flow) => {
    queries.setQueryData(["flow", workspaceId, flow.id], next);
    void queries.invalidateQueries({ queryKey: ["flows", workspaceId] });
    void queries.invalidateQueries({ queryKey: ["versions", workspaceId, flow.id] });
  };
  const publish = useMutation({
    mutationFn: async () => {
      if (!(await beforePublish())) throw new Error("The draft could not be saved; publishing stopped.");
      ok(await api.POST("/api/workspaces/{workspace_id}/flows/{flow_id}/publish", { params: { path }, body: { note } }));
      return ok(await api.GET("/api/workspaces/{workspace_id}/flows/{flow_id}", { params: { path } }));
    },
    onSuccess: (next) => {
      refresh(next);
      setPublished(next.active_version ?? null);
      setOpen(null);
      setNote("");
    },
    onError: onFailed,
  });
  const toggle = useMutation({
    mutationFn: async () =>
      flow.status === "paused"
        ? ok(await api.POST("/api/workspaces/{workspace_id}/flows/{flow_id}/resume", { params: { path } }))
        : ok(await api.POST("/api/workspaces/{workspace_id}/flows/{flow_id}/pause", { params: { path } })),
    onSuccess: refresh,
  });
  const runNow = useMutation({
    mutationFn: async (payload: Record<string, unknown>) =>
      ok(await api.POST("/api/workspaces/{workspace_id}/flows/{flow_id}/run", { params: { path }, body: { payload } })),
    onSuccess: (queued) => navigate(`/w/${workspaceId}/runs/${queued.execution_id}`),
  });
  const replay = useMutation({
    mutationFn: async () => {
      if (!(await beforePublish())) throw new Error("The draft could not be saved; the replay did not start.");
      return ok(await api.POST("/api/workspaces/{workspace_id}/flows/{flow_id}/replays", { params: { path }, body: { last } }));
    },
    onSuccess: (started) => navigate(`/w/${workspaceId}/flows/${flow.id}/replays/${started.id}`),
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    publish.mutate();
  };
  const submitReplay = (e: FormEvent) => {
    e.preventDefault();
    replay.mutate();
  };
  const blocking = problems.length;
  return (
    <div className="actions">
      {flow.active_version != null && (
        <>
          <button
            type="button"
            onClick={() => (trigger ? setOpen((v) => (v === "run" ? null : "run")) : runNow.mutate({}))}
            disabled={runNow.isPending || flow.status === "paused" || live.isPending}
            aria-expanded={trigger ? open === "run" : undefined}
          >
            {trigger ? "Run now…" : "Run now"}
          </button>
          <button type="button" onClick={() => toggle.mutate()} disabled={toggle.isPending}>
            {flow.status === "paused" ? "Resume" : "Pause"}
          </button>
        </>
      )}
      <button type="button" onClick={() => setOpen((v) => (v === "replay" ? null : "replay"))} aria-expanded={open === "replay"}>
        Replay…
      </button>
      <button type="button" className="primary" onClick={() => setOpen((v) => (v === "publish" ? null : "publish"))} aria-expanded={open === "publish"}>
        Publish…
      </button>
      {open === "run" && trigger && (
        <RunNowForm flow={flow} workspaceId={workspaceId} trigger={trigger} pending={runNow.isPending} onRun={(payload) => runNow.mutate(payload)} />
      )}
      {open === "replay" && (
        <form className="popover" onSubmit={submitReplay} aria-label="Replay">
          <label>
            Events to replay
            <input type="number" min={1} max={200} value={last} onChange={(e) => setLast(Math.max(1, Math.min(200, Number(e.target.value) || 1)))} />
          </label>
          <p className="muted small">
            Runs the draft in the sandbox on the flow&apos;s last {last} events and compares it with what the published version did. Nothing is sent.
          </p>
          <button type="submit" className="primary" disabled={replay.isPending}>
            Replay last {last} events through the draft
          </button>
          <ErrorNote error={replay.error} />
        </form>
      )}
      {open === "publish" && (
        <form className="popover" onSubmit={submit} aria-label="Publish">
          <label>
            Version note
            <input value={note} onChange={(e) => setNote(e.target.value)} maxLength={500} placeholder="What changed?" />
          </label>
          {blocking > 0 && (
            <p className="error">
              The draft has {blocking} problem{blocking > 1 ? "s" : ""}; fix {blocking > 1 ? "them" : "it"} before publishing.
            </p>
          )}
          <button type="submit" className="primary" disabled={publish.isPending}>
            Publish new version
          </button>
          <ErrorNote error={publish.error} />
        </form>
      )}
      {published != null && (
        <span className="published" role="status">
          Published as version {published}
        </span>
      )}
      <ErrorNote error={toggle.error ?? runNow.error} />
    </div>
  );
}
