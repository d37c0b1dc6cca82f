// Pure graph-editing logic of the builder: conversion to and from the API's GraphSpec, port
// compatibility, undo/redo, copy/paste, delete and auto-layout. No React here: unit-tested.
import type { EdgeSpec, GraphSpec, NodeDescription, NodeSpec } from "../api/client";

export interface NodeData extends Record<string, unknown> {
  kind: string;
  version: number;
  label: string;
  config: Record<string, unknown>;
  settings?: NodeSpec["settings"];
}

export interface EditorNode {
  id: string;
  type: "sf";
  position: { x: number; y: number };
  data: NodeData;
  selected?: boolean;
}

export interface EditorEdge {
  id: string;
  source: string;
  sourceHandle: string;
  target: string;
  targetHandle: string;
  selected?: boolean;
}

export interface EditorGraph {
  nodes: EditorNode[];
  edges: EditorEdge[];
}

/** Mirrors socialflow/nodes/_base.py `ports_compatible`: `any` on either side, the same type, or
 * a subtype (`instagram.comment` feeds `instagram`). */
export function portsCompatible(sourceType: string, targetType: string): boolean {
  if (sourceType === "any" || targetType === "any") return true;
  return sourceType === targetType || sourceType.startsWith(`${targetType}.`);
}

export function edgeId(e: Pick<EditorEdge, "source" | "sourceHandle" | "target" | "targetHandle">) {
  return `${e.source}:${e.sourceHandle}->${e.target}:${e.targetHandle}`;
}

type Port = NodeDescription["outputs"][number];

/** A node's output ports: its kind's, plus one per `cases[].port` (a switch) or `labels[]` (a
 * classifier) of its config. */
export function outputsOf(config: Record<string, unknown>, kind?: NodeDescription): Port[] {
  const ports = [...(kind?.outputs ?? [])];
  const cases = config.cases;
  if (Array.isArray(cases)) {
    for (const c of cases) {
      const name = (c as { port?: unknown })?.port;
      if (typeof name === "string" && name && !ports.some((p) => p.name === name)) {
        ports.push({ name, type: "any", many: false, description: "Case port." });
      }
    }
  }
  // a classifier routes to one port per label
  if (Array.isArray(config.labels)) {
    for (const label of config.labels) {
      if (typeof label === "string" && /^[a-z][a-z0-9_]*$/.test(label) && !ports.some((p) => p.name === label)) {
        ports.push({ name: label, type: "any", many: false, description: "Label port." });
      }
    }
  }
  return ports;
}

/** Editor state from the API's graph; ports left out default to the kind's first port. */
export function fromGraphSpec(
  spec: GraphSpec,
  kinds: Map<string, NodeDescription> = new Map(),
): EditorGraph {
  const specNodes = spec.nodes ?? [];
  const nodes: EditorNode[] = specNodes.map((n, i) => ({
    id: n.id,
    type: "sf",
    position: { x: n.position?.x ?? 80 + 260 * i, y: n.position?.y ?? 120 },
    data: {
      kind: n.kind,
      version: n.version ?? 1,
      label: n.label ?? "",
      config: (n.config ?? {}) as Record<string, unknown>,
      settings: n.settings,
    },
  }));
  const kindOf = new Map(specNodes.map((n) => [n.id, kinds.get(n.kind)]));
  const edges: EditorEdge[] = (spec.edges ?? []).map((e) => {
    const sourceHandle = e.source_port ?? kindOf.get(e.source)?.outputs[0]?.name ?? "out";
    const targetHandle = e.target_port ?? kindOf.get(e.target)?.inputs[0]?.name ?? "in";
    const edge = { source: e.source, target: e.target, sourceHandle, targetHandle };
    return { id: edgeId(edge), ...edge };
  });
  return { nodes, edges };
}

/** The API's graph from editor state (positions rounded, selection dropped). */
export function toGraphSpec(graph: EditorGraph): GraphSpec {
  const nodes: NodeSpec[] = graph.nodes.map((n) => {
    const spec: NodeSpec = {
      id: n.id,
      kind: n.data.kind,
      version: n.data.version,
      label: n.data.label,
      config: n.data.config,
      position: { x: Math.round(n.position.x), y: Math.round(n.position.y) },
    };
    if (n.data.settings) spec.settings = n.data.settings;
    return spec;
  });
  const edges: EdgeSpec[] = graph.edges.map((e) => ({
    source: e.source,
    source_port: e.sourceHandle,
    target: e.target,
    target_port: e.targetHandle,
  }));
  return { nodes, edges };
}

export interface Connection {
  source: string;
  sourceHandle: string | null;
  target: string;
  targetHandle: string | null;
}

/** Whether a new edge is allowed; otherwise a hint saying why, in words. */
export function checkConnection(
  c: Connection,
  graph: EditorGraph,
  kinds: Map<string, NodeDescription>,
): { ok: true } | { ok: false; reason: string } {
  if (c.source === c.target) return { ok: false, reason: "A node cannot feed itself." };
  const source = graph.nodes.find((n) => n.id === c.source);
  const target = graph.nodes.find((n) => n.id === c.target);
  const out = source
    ? outputsOf(source.data.config, kinds.get(source.data.kind)).find((p) => p.name === c.sourceHandle)
    : undefined;
  const inp = kinds.get(target?.data.kind ?? "")?.inputs.find((p) => p.name === c.targetHandle);
  if (!source || !target || !out || !inp) return { ok: false, reason: "Unknown node or port." };
  if (!portsCompatible(out.type ?? "any", inp.type ?? "any")) {
    return {
      ok: false,
      reason: `“${out.name}” sends ${out.type ?? "any"} but “${inp.name}” accepts ${inp.type ?? "any"}.`,
    };
  }
  const taken = graph.edges.some(
    (e) => e.target === c.target && e.targetHandle === c.targetHandle,
  );
  if (taken && !inp.many) {
    return { ok: false, reason: `Input “${inp.name}” already has a connection.` };
  }
  const id = edgeId({ ...c, sourceHandle: out.name, targetHandle: inp.name });
  if (graph.edges.some((e) => e.id === id)) return { ok: false, reason: "Already connected." };
  if (reaches(graph, c.target, c.source)) {
    return { ok: false, reason: "That edge would make a loop; flows must not cycle." };
  }
  return { ok: true };
}

function reaches(graph: EditorGraph, from: string, to: string): boolean {
  const seen = new Set<string>();
  const stack = [from];
  while (stack.length) {
    const id = stack.pop()!;
    if (id === to) return true;
    if (seen.has(id)) continue;
    seen.add(id);
    for (const e of graph.edges) if (e.source === id) stack.push(e.target);
  }
  return false;
}

/** A fresh node id for a kind, e.g. `http_request_2`. */
export function newNodeId(kind: string, taken: Iterable<string>): string {
  const used = new Set(taken);
  const base = (kind.split(".").pop() ?? "node").replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 50);
  for (let n = 1; ; n += 1) {
    const id = n === 1 ? base : `${base}_${n}`;
    if (!used.has(id)) return id;
  }
}

/** What a node is called: its label, else its kind's title, else its kind or id. */
export function nodeTitle(
  node: { label?: string | null; kind?: string | null; node_id?: string },
  kinds?: Map<string, { title: string }>,
): string {
  if (node.label) return node.label;
  return (node.kind && kinds?.get(node.kind)?.title) || node.kind || node.node_id || "";
}

const NEXT_DX = 280;
const NEXT_DY = 150;

/** Adds a node of `kind`, which becomes the selection. When exactly one node was selected, the
 * new one is connected from it (its first output that fits one of the new node's inputs) and,
 * unless dropped at `position`, placed to its right, below any node already there. */
export function addNode(
  graph: EditorGraph,
  kind: NodeDescription,
  kinds: Map<string, NodeDescription>,
  position?: { x: number; y: number },
): { graph: EditorGraph; id: string } {
  const id = newNodeId(kind.kind, graph.nodes.map((n) => n.id));
  const selected = graph.nodes.filter((n) => n.selected);
  const from = selected.length === 1 ? selected[0] : undefined;
  let at = position ?? { x: 80 + (graph.nodes.length % 4) * 260, y: 80 + Math.floor(graph.nodes.length / 4) * 160 };
  if (from && !position) {
    at = { x: from.position.x + NEXT_DX, y: from.position.y };
    while (graph.nodes.some((n) => Math.abs(n.position.x - at.x) < NEXT_DX / 2 && Math.abs(n.position.y - at.y) < NEXT_DY / 2)) {
      at = { x: at.x, y: at.y + NEXT_DY };
    }
  }
  const node: EditorNode = {
    id,
    type: "sf",
    position: at,
    selected: true,
    data: { kind: kind.kind, version: kind.version, label: "", config: structuredClone(kind.example_config) },
  };
  const next: EditorGraph = {
    nodes: [...graph.nodes.map((n) => ({ ...n, selected: false })), node],
    edges: graph.edges.map((e) => ({ ...e, selected: false })),
  };
  if (from) {
    const lookup = new Map(kinds).set(kind.kind, kind);
    for (const out of outputsOf(from.data.config, kinds.get(from.data.kind))) {
      const inp = kind.inputs.find(
        (i) => checkConnection({ source: from.id, sourceHandle: out.name, target: id, targetHandle: i.name }, next, lookup).ok,
      );
      if (inp) {
        const edge = { source: from.id, sourceHandle: out.name, target: id, targetHandle: inp.name };
        next.edges.push({ ...edge, id: edgeId(edge) });
        break;
      }
    }
  }
  return { graph: next, id };
}

/** Removes the selected nodes (with their edges) and the selected edges. */
export function deleteSelection(graph: EditorGraph): EditorGraph {
  const gone = new Set(graph.nodes.filter((n) => n.selected).map((n) => n.id));
  return {
    nodes: graph.nodes.filter((n) => !gone.has(n.id)),
    edges: graph.edges.filter((e) => !e.selected && !gone.has(e.source) && !gone.has(e.target)),
  };
}

/** The selected nodes and the edges between them, for the clipboard. */
export function copySelection(graph: EditorGraph): EditorGraph {
  const picked = graph.nodes.filter((n) => n.selected);
  const ids = new Set(picked.map((n) => n.id));
  return {
    nodes: structuredClone(picked),
    edges: structuredClone(graph.edges.filter((e) => ids.has(e.source) && ids.has(e.target))),
  };
}

/** Adds a clipboard's nodes under fresh ids, shifted by `offset`; they become the selection. */
export function paste(graph: EditorGraph, clip: EditorGraph, offset = 40): EditorGraph {
  const taken = new Set(graph.nodes.map((n) => n.id));
  const rename = new Map<string, string>();
  const added = clip.nodes.map((n) => {
    const id = newNodeId(n.data.kind, taken);
    taken.add(id);
    rename.set(n.id, id);
    return {
      ...structuredClone(n),
      id,
      selected: true,
      position: { x: n.position.x + offset, y: n.position.y + offset },
    };
  });
  const edges = clip.edges.map((e) => {
    const edge = {
      source: rename.get(e.source)!,
      target: rename.get(e.target)!,
      sourceHandle: e.sourceHandle,
      targetHandle: e.targetHandle,
    };
    return { ...edge, id: edgeId(edge) };
  });
  return {
    nodes: [...graph.nodes.map((n) => ({ ...n, selected: false })), ...added],
    edges: [...graph.edges.map((e) => ({ ...e, selected: false })), ...edges],
  };
}

/** Left-to-right layers by longest path from the triggers; rows in input order. */
export function autoLayout(graph: EditorGraph, dx = 280, dy = 150): EditorGraph {
  const layer = new Map<string, number>(graph.nodes.map((n) => [n.id, 0]));
  for (let pass = 0; pass < graph.nodes.length; pass += 1) {
    let changed = false;
    for (const e of graph.edges) {
      const next = (layer.get(e.source) ?? 0) + 1;
      if (layer.has(e.target) && next > (layer.get(e.target) ?? 0)) {
        layer.set(e.target, next);
        changed = true;
      }
    }
    if (!changed) break;
  }
  const rows = new Map<number, number>();
  const nodes = graph.nodes.map((n) => {
    const col = layer.get(n.id) ?? 0;
    const row = rows.get(col) ?? 0;
    rows.set(col, row + 1);
    return { ...n, position: { x: 60 + col * dx, y: 60 + row * dy } };
  });
  return { nodes, edges: graph.edges };
}

/** Bounded undo/redo over graph snapshots. */
export class History {
  private past: EditorGraph[] = [];
  private future: EditorGraph[] = [];

  constructor(private readonly limit = 100) {}

  /** Records the state before a change. */
  record(before: EditorGraph): void {
    this.past.push(strip(before));
    if (this.past.length > this.limit) this.past.shift();
    this.future = [];
  }

  undo(current: EditorGraph): EditorGraph | undefined {
    const prev = this.past.pop();
    if (prev) this.future.push(strip(current));
    return prev;
  }

  redo(current: EditorGraph): EditorGraph | undefined {
    const next = this.future.pop();
    if (next) this.past.push(strip(current));
    return next;
  }

  get canUndo(): boolean {
    return this.past.length > 0;
  }

  get canRedo(): boolean {
    return this.future.length > 0;
  }
}

function strip(g: EditorGraph): EditorGraph {
  // selection is kept: undoing a delete brings the nodes back selected, as they were
  return structuredClone(g);
}

/** Template variables a node's fields may use: the trigger's and each upstream node's ports. */
export function templateVariables(
  nodeId: string,
  graph: EditorGraph,
  kinds: Map<string, NodeDescription>,
  sample: Record<string, unknown> = {},
): string[] {
  const vars = ["trigger", ...Object.keys(sample).map((k) => `trigger.${k}`)];
  const upstream = new Set<string>();
  const stack = [nodeId];
  while (stack.length) {
    const id = stack.pop()!;
    for (const e of graph.edges) {
      if (e.target === id && !upstream.has(e.source)) {
        upstream.add(e.source);
        stack.push(e.source);
      }
    }
  }
  for (const n of graph.nodes) {
    if (!upstream.has(n.id)) continue;
    for (const port of kinds.get(n.data.kind)?.outputs ?? []) vars.push(`nodes.${n.id}.${port.name}`);
  }
  return vars;
}
