import { useCallback, useEffect, useMemo, useRef, useState, type DragEvent } from "react";
import { Link, useParams, useSearchParams } from "react-router-dom";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import {
  Background,
  Controls,
  MiniMap,
  ReactFlow,
  ReactFlowProvider,
  applyEdgeChanges,
  applyNodeChanges,
  useReactFlow,
  type EdgeChange,
  type NodeChange,
} from "@xyflow/react";
import { ApiError, api, errorText, ok, type Flow, type GraphProblem, type NodeDescription } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { StatusBadge } from "../components/Status";
import { useNodeTypes, useWorkspace } from "../state";
import { ConfigPanel } from "./ConfigPanel";
import { DRAG_TYPE, Palette } from "./Palette";
import { CanvasContext, SfNode, type NodeRunState } from "./SfNode";
import { FlowActions } from "./FlowActions";
import { TestPanel } from "./TestPanel";
import { VersionsPanel } from "./VersionsPanel";
import {
  History,
  addNode as addToGraph,
  autoLayout,
  checkConnection,
  copySelection,
  deleteSelection,
  edgeId,
  fromGraphSpec,
  paste,
  templateVariables,
  toGraphSpec,
  type Connection,
  type EditorEdge,
  type EditorGraph,
  type EditorNode,
} from "./graph";

const NODE_TYPES = { sf: SfNode };

export function Builder() {
  const { id: ws, canEdit } = useWorkspace();
  const { flowId = "" } = useParams();
  const kinds = useNodeTypes();
  const flow = useQuery({
    queryKey: ["flow", ws, flowId],
    queryFn: async () =>
      ok(await api.GET("/api/workspaces/{workspace_id}/flows/{flow_id}", { params: { path: { workspace_id: ws, flow_id: flowId } } })),
    refetchOnMount: "always",
  });
  if (flow.error || kinds.error) return <ErrorNote error={flow.error ?? kinds.error} />;
  if (!flow.data || !kinds.data) return <p className="center muted">Loading the flow…</p>;
  return (
    <ReactFlowProvider>
      <Editor key={flow.data.id} flow={flow.data} kinds={kinds.data} readOnly={!canEdit} workspaceId={ws} />
    </ReactFlowProvider>
  );
}

type SaveState = "saved" | "saving" | "unsaved" | "failed";

function isTyping(target: EventTarget | null): boolean {
  const el = target as HTMLElement | null;
  return Boolean(el && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName)));
}

interface EditorProps {
  flow: Flow;
  kinds: { list: NodeDescription[]; byKind: Map<string, NodeDescription> };
  readOnly: boolean;
  workspaceId: string;
}

function Editor({ flow, kinds, readOnly, workspaceId }: EditorProps) {
  const queries = useQueryClient();
  const flowApi = useReactFlow();
  const [graph, setGraph] = useState<EditorGraph>(() => fromGraphSpec(flow.graph, kinds.byKind));
  const [problems, setProblems] = useState<GraphProblem[]>(flow.problems);
  const [save, setSave] = useState<{ state: SaveState; error?: string }>({ state: "saved" });
  const [hint, setHint] = useState("");
  // "Test the draft with it" in the event log opens the test panel on that event
  const [search] = useSearchParams();
  const initialEvent = search.get("event") ?? undefined;
  const [tab, setTab] = useState<"node" | "test" | "versions">(initialEvent ? "test" : "node");
  const [runs, setRuns] = useState<Map<string, NodeRunState>>(new Map());
  const [viewing, setViewing] = useState<{ number: number; graph: EditorGraph } | null>(null);
  const [sample, setSample] = useState<Record<string, unknown>>({});
  const history = useRef(new History());
  const clipboard = useRef<EditorGraph | null>(null);
  const canvasRef = useRef<HTMLDivElement>(null);
  const lastReason = useRef("");
  const savedJson = useRef(JSON.stringify(toGraphSpec(graph)));
  const [, bump] = useState(0);

  const change = useCallback((next: EditorGraph | ((g: EditorGraph) => EditorGraph)) => {
    setGraph((current) => {
      history.current.record(current);
      return typeof next === "function" ? next(current) : next;
    });
    bump((n) => n + 1);
  }, []);

  // autosave the draft (problems come back with it; work in progress is kept unvalidated)
  const specJson = useMemo(() => JSON.stringify(toGraphSpec(graph)), [graph]);
  const saveNow = useCallback(async (): Promise<boolean> => {
    if (readOnly || specJson === savedJson.current) return true;
    setSave({ state: "saving" });
    try {
      const saved = ok(
        await api.PATCH("/api/workspaces/{workspace_id}/flows/{flow_id}", {
          params: { path: { workspace_id: workspaceId, flow_id: flow.id }, query: { validate: false } },
          body: { graph: JSON.parse(specJson) },
        }),
      );
      savedJson.current = specJson;
      setProblems(saved.problems);
      setSave({ state: "saved" });
      queries.setQueryData(["flow", workspaceId, flow.id], saved);
      return true;
    } catch (error) {
      setSave({ state: "failed", error: errorText(error) });
      return false;
    }
  }, [readOnly, specJson, workspaceId, flow.id, queries]);
  useEffect(() => {
    if (readOnly || specJson === savedJson.current) return undefined;
    setSave({ state: "unsaved" });
    const timer = setTimeout(() => void saveNow(), 800);
    return () => clearTimeout(timer);
  }, [specJson, readOnly, saveNow]);

  const problemsByNode = useMemo(() => {
    const map = new Map<string, string[]>();
    for (const p of problems) {
      if (!p.node_id) continue;
      map.set(p.node_id, [...(map.get(p.node_id) ?? []), p.field ? `${p.field}: ${p.message}` : p.message]);
    }
    return map;
  }, [problems]);
  const canvas = useMemo(() => ({ kinds: kinds.byKind, problems: problemsByNode, runs }), [kinds.byKind, problemsByNode, runs]);

  const shown = viewing?.graph ?? graph;
  const editable = !readOnly && !viewing;
  const selected = shown.nodes.filter((n) => n.selected);
  const single = selected.length === 1 ? selected[0] : undefined;

  const onNodesChange = useCallback(
    (changes: NodeChange<EditorNode>[]) => {
      if (viewing) {
        setViewing((v) => v && { ...v, graph: { ...v.graph, nodes: applyNodeChanges(changes.filter((c) => c.type === "select"), v.graph.nodes) } });
        return;
      }
      setGraph((g) => ({ ...g, nodes: applyNodeChanges(changes, g.nodes) }));
    },
    [viewing],
  );
  const onEdgesChange = useCallback((changes: EdgeChange<EditorEdge>[]) => {
    setGraph((g) => ({ ...g, edges: applyEdgeChanges(changes.filter((c) => c.type === "select"), g.edges) }));
  }, []);
  const isValidConnection = useCallback(
    (c: Connection | EditorEdge) => {
      const result = checkConnection(c as Connection, graph, kinds.byKind);
      lastReason.current = result.ok ? "" : result.reason;
      return result.ok;
    },
    [graph, kinds.byKind],
  );
  const onConnect = useCallback(
    (c: Connection) => {
      const result = checkConnection(c, graph, kinds.byKind);
      if (!result.ok) {
        setHint(result.reason);
        return;
      }
      const edge = { source: c.source, target: c.target, sourceHandle: c.sourceHandle!, targetHandle: c.targetHandle! };
      change((g) => ({ ...g, edges: [...g.edges, { ...edge, id: edgeId(edge) }] }));
      setHint("");
    },
    [graph, kinds.byKind, change],
  );
  const onConnectEnd = useCallback(() => {
    if (lastReason.current) setHint(`Not connected: ${lastReason.current}`);
    lastReason.current = "";
  }, []);

  const addNode = useCallback(
    (kind: string, position?: { x: number; y: number }) => {
      const description = kinds.byKind.get(kind);
      if (!description) return;
      const added = addToGraph(graph, description, kinds.byKind, position);
      const from = graph.nodes.filter((n) => n.selected);
      change(added.graph);
      setTab("node");
      // keep the new node in view: when it lands outside, show it with the node it follows,
      // never zooming in past the current zoom
      const shown = [...(from.length === 1 ? [{ id: from[0].id }] : []), { id: added.id }];
      setTimeout(() => {
        const box = canvasRef.current?.getBoundingClientRect();
        const node = canvasRef.current?.querySelector(`.react-flow__node[data-id="${CSS.escape(added.id)}"]`)?.getBoundingClientRect();
        const inView = box && node && node.left >= box.left && node.top >= box.top && node.right <= box.right && node.bottom <= box.bottom;
        if (!inView) void flowApi.fitView({ nodes: shown, maxZoom: flowApi.getZoom(), padding: 0.3, duration: 200 });
      }, 50);
    },
    [kinds.byKind, change, graph, flowApi],
  );
  const onDrop = (e: DragEvent) => {
    const kind = e.dataTransfer.getData(DRAG_TYPE);
    if (!kind || !editable) return;
    e.preventDefault();
    addNode(kind, flowApi.screenToFlowPosition({ x: e.clientX, y: e.clientY }));
  };

  const undo = useCallback(() => {
    setGraph((g) => history.current.undo(g) ?? g);
    bump((n) => n + 1);
  }, []);
  const redo = useCallback(() => {
    setGraph((g) => history.current.redo(g) ?? g);
    bump((n) => n + 1);
  }, []);
  useEffect(() => {
    if (!editable) return undefined;
    const onKey = (e: KeyboardEvent) => {
      if (isTyping(e.target)) return;
      const mod = e.ctrlKey || e.metaKey;
      const key = e.key.toLowerCase();
      if (key === "delete" || key === "backspace") {
        e.preventDefault();
        change((g) => deleteSelection(g));
      } else if (mod && key === "z" && !e.shiftKey) {
        e.preventDefault();
        undo();
      } else if (mod && (key === "y" || (key === "z" && e.shiftKey))) {
        e.preventDefault();
        redo();
      } else if (mod && key === "c") {
        clipboard.current = copySelection(graph);
      } else if (mod && key === "v" && clipboard.current?.nodes.length) {
        e.preventDefault();
        const clip = clipboard.current;
        change((g) => paste(g, clip));
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [editable, graph, change, undo, redo]);

  const updateNode = (id: string, data: Partial<EditorNode["data"]>) =>
    change((g) => ({ ...g, nodes: g.nodes.map((n) => (n.id === id ? { ...n, data: { ...n.data, ...data } } : n)) }));

  const onPublishFailed = (error: unknown) => {
    const listed = error instanceof ApiError ? (error.details.problems as GraphProblem[] | undefined) : undefined;
    if (Array.isArray(listed)) setProblems(listed.filter((p) => typeof p === "object" && p && "message" in p));
  };

  const variables = useMemo(
    () => (single ? templateVariables(single.id, graph, kinds.byKind, sample) : []),
    [single, graph, kinds.byKind, sample],
  );

  return (
    <div className="builder">
      <div className="toolbar" role="toolbar" aria-label="Flow editor">
        <Link to=".." relative="path" className="ghost">
          ← Flows
        </Link>
        <h1 className="flow-name">{flow.name}</h1>
        <StatusBadge status={flow.status} />
        {flow.active_version && <span className="muted">v{flow.active_version} live</span>}
        {editable && (
          <>
            <button type="button" onClick={undo} disabled={!history.current.canUndo} title="Undo (Ctrl+Z)">
              Undo
            </button>
            <button type="button" onClick={redo} disabled={!history.current.canRedo} title="Redo (Ctrl+Shift+Z)">
              Redo
            </button>
            <button type="button" onClick={() => change((g) => autoLayout(g))} disabled={!graph.nodes.length}>
              Auto-layout
            </button>
            <span className={`save save-${save.state}`} role="status" title={save.error}>
              {{ saved: "All changes saved", saving: "Saving…", unsaved: "Unsaved changes", failed: `Not saved: ${save.error}` }[save.state]}
            </span>
          </>
        )}
        {readOnly && <span className="muted">Read only: your role cannot edit flows.</span>}
        <span className="spacer" />
        {!readOnly && (
          <FlowActions flow={flow} workspaceId={workspaceId} beforePublish={saveNow} problems={problems} onFailed={onPublishFailed} />
        )}
      </div>
      {hint && (
        <p className="hint" role="alert">
          {hint}{" "}
          <button type="button" className="ghost" onClick={() => setHint("")} aria-label="Dismiss">
            ×
          </button>
        </p>
      )}
      {viewing && (
        <p className="banner" role="status">
          Viewing published version {viewing.number} (read only).{" "}
          <button type="button" onClick={() => setViewing(null)}>
            Back to the draft
          </button>
        </p>
      )}
      <div className="builder-body">
        {editable && <Palette kinds={kinds.list} onAdd={(kind) => addNode(kind)} />}
        <CanvasContext.Provider value={canvas}>
          <div ref={canvasRef} className="canvas" onDragOver={(e) => e.preventDefault()} onDrop={onDrop} aria-label="Flow canvas">
            <ReactFlow
              nodes={shown.nodes}
              edges={shown.edges}
              nodeTypes={NODE_TYPES}
              onNodesChange={onNodesChange}
              onEdgesChange={onEdgesChange}
              onConnect={onConnect}
              onConnectEnd={onConnectEnd}
              isValidConnection={isValidConnection}
              onNodeDragStart={() => history.current.record(graph)}
              nodesDraggable={editable}
              nodesConnectable={editable}
              elementsSelectable
              deleteKeyCode={null}
              fitView
              fitViewOptions={{ maxZoom: 1 }}
              proOptions={{ hideAttribution: true }}
            >
              <Background />
              <Controls showInteractive={false} />
              <MiniMap pannable zoomable ariaLabel="Mini map" />
            </ReactFlow>
            {shown.nodes.length === 0 && (
              <p className="canvas-empty">
                {editable ? "Drag a trigger from the palette to start, or press one to add it." : "This flow has no nodes yet."}
              </p>
            )}
          </div>
        </CanvasContext.Provider>
        <div className="side">
          <div className="tabs" role="tablist">
            {(["node", "test", "versions"] as const).map((t) => (
              <button key={t} type="button" role="tab" aria-selected={tab === t} onClick={() => setTab(t)}>
                {{ node: "Node", test: "Test", versions: "Versions" }[t]}
              </button>
            ))}
          </div>
          {tab === "node" &&
            (single ? (
              <ConfigPanel
                workspaceId={workspaceId}
                node={single}
                kind={kinds.byKind.get(single.data.kind)}
                variables={variables}
                problems={problems}
                readOnly={!editable}
                onLabel={(label) => updateNode(single.id, { label })}
                onConfig={(config) => updateNode(single.id, { config })}
                onDelete={() => change((g) => deleteSelection({ ...g, nodes: g.nodes.map((n) => ({ ...n, selected: n.id === single.id })) }))}
              />
            ) : (
              <div className="panel">
                <p className="muted">{selected.length > 1 ? `${selected.length} nodes selected.` : "Select a node to see its settings."}</p>
                {problems.filter((p) => !p.node_id).map((p) => (
                  <p key={p.code + p.message} className="error">
                    {p.message}
                  </p>
                ))}
                {editable && (
                  <p className="muted small">
                    Keys: Delete removes the selection, Ctrl+C / Ctrl+V copy and paste, Ctrl+Z / Ctrl+Shift+Z undo and redo.
                  </p>
                )}
              </div>
            ))}
          {tab === "test" && (
            <TestPanel
              flow={flow}
              graph={graph}
              workspaceId={workspaceId}
              readOnly={readOnly}
              beforeRun={saveNow}
              onSample={setSample}
              onRuns={setRuns}
              initialEvent={initialEvent}
            />
          )}
          {tab === "versions" && (
            <VersionsPanel
              flow={flow}
              workspaceId={workspaceId}
              readOnly={readOnly}
              viewing={viewing?.number}
              onView={(number, spec) => setViewing(spec ? { number, graph: fromGraphSpec(spec, kinds.byKind) } : null)}
            />
          )}
        </div>
      </div>
    </div>
  );
}
