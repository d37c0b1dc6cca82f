import { useMemo, useState } from "react";
import type { NodeDescription } from "../api/client";
import { plainText } from "../components/markup";
import { iconFor } from "./icons";

export const DRAG_TYPE = "application/x-socialflow-kind";
const ORDER = ["trigger", "action", "ai", "logic", "data"];

/** Node kinds grouped by category, searchable; drag one to the canvas or press it to add. */
export function Palette({ kinds, onAdd }: { kinds: NodeDescription[]; onAdd: (kind: string) => void }) {
  const [query, setQuery] = useState("");
  const groups = useMemo(() => {
    const q = query.trim().toLowerCase();
    const hits = kinds.filter(
      (k) => !q || `${k.title} ${k.kind} ${k.description} ${k.category}`.toLowerCase().includes(q),
    );
    const byCategory = new Map<string, NodeDescription[]>();
    for (const k of hits) byCategory.set(k.category, [...(byCategory.get(k.category) ?? []), k]);
    const rank = (c: string) => (ORDER.indexOf(c) + 1 || 99);
    return [...byCategory.entries()].sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b));
  }, [kinds, query]);
  return (
    <aside className="palette" aria-label="Node palette">
      <label>
        <span className="sr-only">Search nodes</span>
        <input type="search" placeholder="Search nodes" value={query} onChange={(e) => setQuery(e.target.value)} />
      </label>
      {groups.length === 0 && <p className="muted small">No node matches “{query}”.</p>}
      {groups.map(([category, items]) => (
        <section key={category}>
          <h3>{category}</h3>
          {items.map((k) => (
            <button
              key={k.kind}
              type="button"
              className="palette-item"
              draggable
              title={`${plainText(k.description)}\nDrag to the canvas, or press to add.`}
              onDragStart={(e) => {
                e.dataTransfer.setData(DRAG_TYPE, k.kind);
                e.dataTransfer.effectAllowed = "move";
              }}
              onClick={() => onAdd(k.kind)}
            >
              <span aria-hidden="true">{iconFor(k.icon)}</span> {k.title}
            </button>
          ))}
        </section>
      ))}
    </aside>
  );
}
