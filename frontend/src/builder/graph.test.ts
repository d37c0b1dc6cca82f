import { describe, expect, it } from "vitest";
import type { GraphSpec, NodeDescription } from "../api/client";
import {
  History,
  addNode,
  autoLayout,
  checkConnection,
  copySelection,
  deleteSelection,
  fromGraphSpec,
  newNodeId,
  nodeTitle,
  outputsOf,
  paste,
  portsCompatible,
  templateVariables,
  toGraphSpec,
  type EditorGraph,
} from "./graph";

const port = (name: string, type: string, many = false) => ({ name, type, many, description: "" });
const kind = (k: string, inputs: ReturnType<typeof port>[], outputs: ReturnType<typeof port>[]): NodeDescription => ({
  kind: k,
  version: 1,
  title: k,
  description: "",
  category: "action",
  icon: "globe",
  credentials: [],
  inputs,
  outputs,
  config_schema: {},
  example_config: {},
});

const KINDS = new Map(
  [
    kind("trigger.manual", [], [port("event", "json")]),
    kind("instagram.comment", [], [port("event", "instagram.comment")]),
    kind("data.set", [port("in", "any")], [port("out", "json")]),
    kind("http.request", [port("in", "any")], [port("response", "http.response")]),
    kind("ig.reply", [port("in", "instagram")], [port("out", "json")]),
    kind("merge", [port("items", "json", true)], [port("out", "json")]),
    kind("logic.switch", [port("in", "any")], [port("default", "any")]),
  ].map((k) => [k.kind, k]),
);

const SPEC: GraphSpec = {
  nodes: [
    { id: "start", kind: "trigger.manual", version: 1, label: "Start", config: {}, position: { x: 0, y: 0 } },
    { id: "set", kind: "data.set", version: 1, label: "", config: { values: { a: "1" } }, position: { x: 300, y: 0 } },
    { id: "call", kind: "http.request", version: 1, label: "Call", config: { url: "https://x" }, position: { x: 600, y: 0 } },
  ],
  edges: [
    { source: "start", source_port: "event", target: "set", target_port: "in" },
    { source: "set", source_port: "out", target: "call", target_port: "in" },
  ],
};

const select = (g: EditorGraph, ...ids: string[]): EditorGraph => ({
  ...g,
  nodes: g.nodes.map((n) => ({ ...n, selected: ids.includes(n.id) })),
});

describe("portsCompatible mirrors socialflow.nodes.ports_compatible", () => {
  it.each([
    ["any", "json", true],
    ["json", "any", true],
    ["json", "json", true],
    ["instagram.comment", "instagram", true],
    ["instagram", "instagram.comment", false],
    ["instagramx", "instagram", false],
    ["http.response", "json", false],
    ["json", "schedule.tick", false],
  ])("%s → %s is %s", (source, target, expected) => {
    expect(portsCompatible(source, target)).toBe(expected);
  });
});

describe("GraphSpec conversion", () => {
  it("round-trips nodes, ports, labels, config and positions", () => {
    expect(toGraphSpec(fromGraphSpec(SPEC, KINDS))).toEqual(SPEC);
  });

  it("fills in omitted ports from the kinds", () => {
    const graph = fromGraphSpec(
      { nodes: SPEC.nodes, edges: [{ source: "start", target: "set" } as never] },
      KINDS,
    );
    expect(graph.edges[0]).toMatchObject({ sourceHandle: "event", targetHandle: "in" });
  });

  it("rounds positions and drops selection", () => {
    const graph = fromGraphSpec(SPEC, KINDS);
    graph.nodes[0].position = { x: 10.6, y: -3.2 };
    graph.nodes[0].selected = true;
    const spec = toGraphSpec(graph);
    expect(spec.nodes![0].position).toEqual({ x: 11, y: -3 });
    expect(spec.nodes![0]).not.toHaveProperty("selected");
  });
});

describe("checkConnection", () => {
  const graph = fromGraphSpec({ nodes: [...SPEC.nodes!, { id: "reply", kind: "ig.reply", version: 1, label: "", config: {} }], edges: [] }, KINDS);

  it("accepts compatible ports", () => {
    expect(checkConnection({ source: "start", sourceHandle: "event", target: "set", targetHandle: "in" }, graph, KINDS)).toEqual({ ok: true });
  });

  it("refuses incompatible ports with a hint naming the types", () => {
    const result = checkConnection({ source: "call", sourceHandle: "response", target: "reply", targetHandle: "in" }, graph, KINDS);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toContain("http.response");
    expect(!result.ok && result.reason).toContain("instagram");
  });

  it("refuses a second edge into a single input, allows it into a many input", () => {
    const wired = fromGraphSpec(SPEC, KINDS);
    expect(checkConnection({ source: "start", sourceHandle: "event", target: "call", targetHandle: "in" }, wired, KINDS)).toEqual({
      ok: false,
      reason: "Input “in” already has a connection.",
    });
    const two = fromGraphSpec({ nodes: [...SPEC.nodes!, { id: "m", kind: "merge", version: 1, label: "", config: {} }], edges: [{ source: "start", source_port: "event", target: "m", target_port: "items" }] }, KINDS);
    expect(checkConnection({ source: "set", sourceHandle: "out", target: "m", targetHandle: "items" }, two, KINDS).ok).toBe(true);
  });

  it("refuses loops and self-edges", () => {
    const wired = fromGraphSpec(SPEC, KINDS);
    // set → call exists: call → set would close a loop, while call → a fresh node would not
    expect(checkConnection({ source: "call", sourceHandle: "response", target: "set", targetHandle: "in" }, { ...wired, edges: [wired.edges[1]] }, KINDS)).toMatchObject({ ok: false, reason: expect.stringContaining("loop") });
    const loop = fromGraphSpec({ nodes: [...SPEC.nodes!, { id: "set2", kind: "data.set", version: 1, label: "", config: {} }], edges: [...SPEC.edges!, { source: "call", source_port: "response", target: "set2", target_port: "in" }] }, KINDS);
    expect(checkConnection({ source: "set2", sourceHandle: "out", target: "set", targetHandle: "in" }, { ...loop, edges: loop.edges.slice(1) }, KINDS)).toMatchObject({ ok: false, reason: expect.stringContaining("loop") });
    expect(checkConnection({ source: "call", sourceHandle: "response", target: "set2", targetHandle: "in" }, { ...loop, edges: loop.edges.slice(0, 2) }, KINDS).ok).toBe(true);
    expect(checkConnection({ source: "set", sourceHandle: "out", target: "set", targetHandle: "in" }, loop, KINDS).ok).toBe(false);
  });

  it("knows a switch's case ports from its config", () => {
    const ports = outputsOf({ cases: [{ port: "yes", equals: 1 }] }, KINDS.get("logic.switch"));
    expect(ports.map((p) => p.name)).toEqual(["default", "yes"]);
  });
});

describe("editing", () => {
  it("deletes the selected nodes with their edges", () => {
    const graph = select(fromGraphSpec(SPEC, KINDS), "set");
    const after = deleteSelection(graph);
    expect(after.nodes.map((n) => n.id)).toEqual(["start", "call"]);
    expect(after.edges).toEqual([]);
  });

  it("deletes selected edges only", () => {
    const graph = fromGraphSpec(SPEC, KINDS);
    graph.edges[1].selected = true;
    const after = deleteSelection(graph);
    expect(after.nodes).toHaveLength(3);
    expect(after.edges.map((e) => e.target)).toEqual(["set"]);
  });

  it("copies a selection with its inner edges and pastes it under fresh ids", () => {
    const graph = select(fromGraphSpec(SPEC, KINDS), "set", "call");
    const clip = copySelection(graph);
    expect(clip.nodes.map((n) => n.id)).toEqual(["set", "call"]);
    expect(clip.edges).toHaveLength(1);
    const pasted = paste(graph, clip);
    expect(pasted.nodes.map((n) => n.id)).toEqual(["start", "set", "call", "set_2", "request"]);
    const added = pasted.edges.at(-1)!;
    expect(added).toMatchObject({ source: "set_2", target: "request", sourceHandle: "out", targetHandle: "in" });
    expect(pasted.nodes.filter((n) => n.selected).map((n) => n.id)).toEqual(["set_2", "request"]);
    expect(pasted.nodes[3].position).toEqual({ x: 340, y: 40 });
    // the clipboard is a copy: editing the paste leaves the original alone
    pasted.nodes[3].data.config.values = {};
    expect(graph.nodes[1].data.config.values).toEqual({ a: "1" });
  });

  it("names new nodes after their kind, skipping taken ids", () => {
    expect(newNodeId("http.request", ["request", "request_2"])).toBe("request_3");
  });

  it("lays nodes out left to right by depth", () => {
    const graph = autoLayout(fromGraphSpec(SPEC, KINDS));
    const xs = graph.nodes.map((n) => n.position.x);
    expect(xs[0]).toBeLessThan(xs[1]);
    expect(xs[1]).toBeLessThan(xs[2]);
  });

  it("offers the trigger's fields and upstream ports as template variables", () => {
    const graph = fromGraphSpec(SPEC, KINDS);
    expect(templateVariables("call", graph, KINDS, { username: "ana" })).toEqual([
      "trigger",
      "trigger.username",
      "nodes.start.event",
      "nodes.set.out",
    ]);
    expect(templateVariables("start", graph, KINDS)).toEqual(["trigger"]);
  });
});

describe("History", () => {
  it("undoes and redoes, and a new change clears the redo stack", () => {
    const history = new History();
    const a = fromGraphSpec(SPEC, KINDS);
    const b = deleteSelection(select(a, "call"));
    history.record(a);
    const undone = history.undo(b)!;
    expect(undone.nodes).toHaveLength(3);
    expect(history.canRedo).toBe(true);
    const redone = history.redo(undone)!;
    expect(redone.nodes).toHaveLength(2);
    history.undo(redone);
    history.record(a);
    expect(history.canRedo).toBe(false);
    expect(history.undo(a)).toBeDefined();
  });

  it("keeps at most its limit of steps", () => {
    const history = new History(2);
    const g = fromGraphSpec(SPEC, KINDS);
    history.record(g);
    history.record(g);
    history.record(g);
    expect(history.undo(g)).toBeDefined();
    expect(history.undo(g)).toBeDefined();
    expect(history.undo(g)).toBeUndefined();
  });
});

describe("adding a node from the palette", () => {
  const graphOf = (selected: string | null): EditorGraph => ({
    nodes: [
      { id: "start", type: "sf", position: { x: 100, y: 100 }, selected: selected === "start", data: { kind: "trigger.manual", version: 1, label: "", config: {} } },
      { id: "set", type: "sf", position: { x: 380, y: 100 }, selected: selected === "set", data: { kind: "data.set", version: 1, label: "", config: {} } },
    ],
    edges: [],
  });

  it("puts it downstream of the selected node, connected, below a node already there", () => {
    const { graph, id } = addNode(graphOf("start"), KINDS.get("http.request")!, KINDS);
    expect(id).toBe("request");
    const added = graph.nodes.find((n) => n.id === id)!;
    expect(added.position).toEqual({ x: 380, y: 250 });
    expect(added.selected).toBe(true);
    expect(graph.nodes.filter((n) => n.selected).map((n) => n.id)).toEqual(["request"]);
    expect(graph.edges).toEqual([
      { id: "start:event->request:in", source: "start", sourceHandle: "event", target: "request", targetHandle: "in" },
    ]);
  });

  it("connects only ports that fit", () => {
    const { graph } = addNode(graphOf("start"), KINDS.get("ig.reply")!, KINDS);
    expect(graph.edges).toEqual([]); // json does not feed an instagram input
    const fromSet = addNode(graphOf("set"), KINDS.get("http.request")!, KINDS);
    expect(fromSet.graph.nodes.at(-1)!.position).toEqual({ x: 660, y: 100 });
    expect(fromSet.graph.edges.map((e) => e.id)).toEqual(["set:out->request:in"]);
  });

  it("keeps a drop position, and connects nothing without one selected node", () => {
    const dropped = addNode(graphOf("start"), KINDS.get("data.set")!, KINDS, { x: 5, y: 6 });
    expect(dropped.graph.nodes.at(-1)!.position).toEqual({ x: 5, y: 6 });
    expect(dropped.graph.edges.map((e) => e.target)).toEqual([dropped.id]);
    const alone = addNode(graphOf(null), KINDS.get("data.set")!, KINDS);
    expect(alone.graph.edges).toEqual([]);
    expect(alone.graph.nodes.at(-1)!.position).toEqual({ x: 600, y: 80 });
  });
});

describe("nodeTitle", () => {
  it("is the label, else the kind's title, else the kind or id", () => {
    const titles = new Map([["data.set", { title: "Set values" }]]);
    expect(nodeTitle({ label: "Greeting", kind: "data.set" }, titles)).toBe("Greeting");
    expect(nodeTitle({ label: "", kind: "data.set", node_id: "set" }, titles)).toBe("Set values");
    expect(nodeTitle({ label: null, kind: "x.unknown", node_id: "n1" }, titles)).toBe("x.unknown");
    expect(nodeTitle({ node_id: "n1" })).toBe("n1");
  });
});
