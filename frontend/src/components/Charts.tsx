// Small SVG charts of the runs page: runs per hour and duration percentiles per flow.
import type { ExecutionSummary } from "../api/client";
import { ellipsize } from "./markup";
import { duration } from "./Status";

const HOUR = 3600 * 1000;

/** Runs per hour over the last `hours` hours, oldest first, split by outcome. */
export function perHour(runs: ExecutionSummary[], hours = 24, now = Date.now()) {
  const start = Math.floor(now / HOUR) * HOUR - (hours - 1) * HOUR;
  const buckets = Array.from({ length: hours }, (_, i) => ({ at: start + i * HOUR, ok: 0, failed: 0, other: 0 }));
  for (const r of runs) {
    const i = Math.floor((Date.parse(r.created_at) - start) / HOUR);
    if (i < 0 || i >= hours) continue;
    if (r.status === "completed") buckets[i].ok += 1;
    else if (r.status === "failed" || r.status === "crashed") buckets[i].failed += 1;
    else buckets[i].other += 1;
  }
  return buckets;
}

/** The `q` quantile (0..1) of sorted numbers, nearest rank. */
export function quantile(sorted: number[], q: number): number | undefined {
  if (!sorted.length) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** p50 and p95 duration of finished runs per flow. */
export function durationsByFlow(runs: ExecutionSummary[]) {
  const byFlow = new Map<string, { name: string; values: number[] }>();
  for (const r of runs) {
    if (r.duration_ms == null) continue;
    const key = r.flow_id ?? r.flow_name;
    const entry = byFlow.get(key) ?? { name: r.flow_name, values: [] };
    entry.values.push(r.duration_ms);
    byFlow.set(key, entry);
  }
  return [...byFlow.entries()].map(([id, { name, values }]) => {
    const sorted = [...values].sort((a, b) => a - b);
    return { id, name, count: sorted.length, p50: quantile(sorted, 0.5)!, p95: quantile(sorted, 0.95)! };
  });
}

export function RunsPerHour({ runs }: { runs: ExecutionSummary[] }) {
  const buckets = perHour(runs);
  const max = Math.max(1, ...buckets.map((b) => b.ok + b.failed + b.other));
  const w = 24;
  const h = 90;
  const total = buckets.reduce((s, b) => s + b.ok + b.failed + b.other, 0);
  return (
    <figure className="chart">
      <figcaption>Runs per hour, last 24 h ({total})</figcaption>
      <svg viewBox={`0 0 ${buckets.length * w} ${h + 16}`} role="img" aria-label={`Runs per hour; ${total} in the last 24 hours`}>
        {buckets.map((b, i) => {
          const parts = [
            { n: b.ok, cls: "bar-ok" },
            { n: b.failed, cls: "bar-failed" },
            { n: b.other, cls: "bar-other" },
          ];
          let y = h;
          return (
            <g key={b.at}>
              <title>{`${new Date(b.at).getHours()}:00 — ${b.ok} completed, ${b.failed} failed, ${b.other} other`}</title>
              {parts.map(({ n, cls }) => {
                const bh = (n / max) * h;
                y -= bh;
                return n ? <rect key={cls} className={cls} x={i * w + 2} y={y} width={w - 4} height={bh} /> : null;
              })}
              {i % 6 === 0 && (
                <text x={i * w + 2} y={h + 13} className="axis">
                  {new Date(b.at).getHours()}h
                </text>
              )}
            </g>
          );
        })}
      </svg>
    </figure>
  );
}

export function DurationByFlow({ runs }: { runs: ExecutionSummary[] }) {
  const rows = durationsByFlow(runs);
  if (!rows.length) return null;
  const max = Math.max(...rows.map((r) => r.p95), 1);
  return (
    <figure className="chart">
      <figcaption>Duration per flow (p50 / p95)</figcaption>
      <svg viewBox={`0 0 460 ${rows.length * 26}`} role="img" aria-label="Duration percentiles per flow">
        {rows.map((r, i) => (
          <g key={r.id} transform={`translate(0 ${i * 26})`}>
            <title>{`${r.name}: p50 ${duration(r.p50)}, p95 ${duration(r.p95)} over ${r.count} runs`}</title>
            <text x={0} y={15} className="axis">
              {ellipsize(r.name, 18)}
            </text>
            <rect className="bar-p95" x={130} y={4} width={(r.p95 / max) * 180} height={14} />
            <rect className="bar-p50" x={130} y={4} width={(r.p50 / max) * 180} height={14} />
            <text x={318} y={15} className="axis">
              {duration(r.p50)} / {duration(r.p95)}
            </text>
          </g>
        ))}
      </svg>
    </figure>
  );
}
