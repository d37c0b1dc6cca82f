import { createContext, memo, useContext } from "react";
import { Handle, Position, type NodeProps, type Node } from "@xyflow/react";
import type { NodeDescription } from "../api/client";
import { plainText } from "../components/markup";
import { outputsOf, type NodeData } from "./graph";
import { iconFor } from "./icons";

export interface NodeRunState {
  status: string;
  error?: string | null;
  duration_ms?: number | null;
}

export interface CanvasInfo {
  kinds: Map<string, NodeDescription>;
  problems: Map<string, string[]>;
  runs: Map<string, NodeRunState>;
}

export const CanvasContext = createContext<CanvasInfo>({
  kinds: new Map(),
  problems: new Map(),
  runs: new Map(),
});

const PORT_GAP = 22;

/** A node on the canvas: icon, title, kind, ports; outlined red with its problems, coloured by
 * its run status. */
export const SfNode = memo(function SfNode({ id, data, selected }: NodeProps<Node<NodeData>>) {
  const { kinds, problems, runs } = useContext(CanvasContext);
  const kind = kinds.get(data.kind);
  const issues = problems.get(id) ?? [];
  const run = runs.get(id);
  const inputs = kind?.inputs ?? [];
  const outputs = outputsOf(data.config, kind);
  const rows = Math.max(inputs.length, outputs.length, 1);
  const classes = ["sf-node", selected ? "selected" : "", issues.length ? "invalid" : "", run ? `run-${run.status}` : ""];
  return (
    <div className={classes.join(" ")} data-testid={`node-${id}`}>
      <div className="sf-node-head">
        <span className="sf-icon" aria-hidden="true">
          {iconFor(kind?.icon ?? "")}
        </span>
        <div>
          <div className="sf-title">{data.label || kind?.title || data.kind}</div>
          <div className="sf-kind">{data.kind}</div>
        </div>
      </div>
      <div className="sf-ports" style={{ height: rows * PORT_GAP }} />
      {run && (
        <div className={`sf-run st-${run.status}`} title={run.error ?? undefined}>
          {run.status}
          {run.duration_ms != null && ` · ${Math.round(run.duration_ms)} ms`}
        </div>
      )}
      {!kind && <div className="sf-problem">Unknown node kind on this server.</div>}
      {issues.map((p) => (
        <div key={p} className="sf-problem" role="note">
          {p}
        </div>
      ))}
      {inputs.map((p, i) => (
        <Handle
          key={`in-${p.name}`}
          id={p.name}
          type="target"
          position={Position.Left}
          style={{ top: 50 + i * PORT_GAP }}
          title={`${p.name}: ${p.type}${p.description ? ` — ${plainText(p.description)}` : ""}`}
        >
          <span className="port-label in">{p.name}</span>
        </Handle>
      ))}
      {outputs.map((p, i) => (
        <Handle
          key={`out-${p.name}`}
          id={p.name}
          type="source"
          position={Position.Right}
          style={{ top: 50 + i * PORT_GAP }}
          title={`${p.name}: ${p.type}${p.description ? ` — ${plainText(p.description)}` : ""}`}
        >
          <span className="port-label out">{p.name}</span>
        </Handle>
      ))}
    </div>
  );
});
