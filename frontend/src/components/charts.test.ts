import { describe, expect, it } from "vitest";
import type { ExecutionSummary } from "../api/client";
import { durationsByFlow, perHour, quantile } from "./Charts";
import { runStats } from "../pages/FlowsList";

const NOW = Date.parse("2026-01-02T12:30:00Z");
const run = (flow: string, minutesAgo: number, status = "completed", duration_ms: number | null = 100): ExecutionSummary =>
  ({ id: `${flow}-${minutesAgo}`, flow_id: flow, flow_name: flow, status, duration_ms, created_at: new Date(NOW - minutesAgo * 60_000).toISOString() }) as ExecutionSummary;

describe("run statistics", () => {
  it("quantile is nearest-rank", () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(quantile(values, 0.5)).toBe(50);
    expect(quantile(values, 0.95)).toBe(95);
    expect(quantile([], 0.5)).toBeUndefined();
  });

  it("counts runs per hour by outcome, dropping older ones", () => {
    const buckets = perHour([run("a", 5), run("a", 10, "failed"), run("a", 70, "running"), run("a", 60 * 30)], 24, NOW);
    expect(buckets).toHaveLength(24);
    expect(buckets[23]).toMatchObject({ ok: 1, failed: 1, other: 0 });
    expect(buckets[22]).toMatchObject({ other: 1 });
    expect(buckets.reduce((s, b) => s + b.ok + b.failed + b.other, 0)).toBe(3);
  });

  it("gives p50/p95 per flow from finished runs", () => {
    const runs = [run("a", 1, "completed", 10), run("a", 2, "completed", 30), run("a", 3, "running", null), run("b", 1, "failed", 5)];
    expect(durationsByFlow(runs)).toEqual([
      { id: "a", name: "a", count: 2, p50: 10, p95: 30 },
      { id: "b", name: "b", count: 1, p50: 5, p95: 5 },
    ]);
  });

  it("finds each flow's last run and its runs in the last 24 h (newest first input)", () => {
    const stats = runStats([run("a", 1, "failed"), run("a", 60), run("a", 60 * 25), run("b", 60 * 30)], NOW);
    expect(stats.get("a")?.last?.status).toBe("failed");
    expect(stats.get("a")?.day).toBe(2);
    expect(stats.get("b")?.day).toBe(0);
  });
});

describe("duration chart", () => {
  it("ends a long flow name in an ellipsis and keeps the whole name in its tooltip", async () => {
    const { createElement } = await import("react");
    const { renderToStaticMarkup } = await import("react-dom/server");
    const { DurationByFlow } = await import("./Charts");
    const name = "Comment auto-reply for the spring sale";
    const html = renderToStaticMarkup(createElement(DurationByFlow, { runs: [run(name, 5)] }));
    expect(html).toContain(">Comment auto-repl…</text>");
    expect(html).toContain(`<title>${name}: p50`);
  });
});
