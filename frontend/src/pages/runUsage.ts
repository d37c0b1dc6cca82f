// Tokens and cost of runs and AI nodes, in words (pure logic of the runs list and run detail).
import type { Schemas } from "../api/client";

type Usage = Schemas["RunUsageRead"] | Schemas["Usage"];

/** US dollars: cents above $1, four decimals above a cent, two significant digits below. */
export function formatCost(usd: number): string {
  if (usd <= 0) return "$0";
  if (usd >= 1) return `$${usd.toFixed(2)}`;
  if (usd >= 0.01) return `$${usd.toFixed(4)}`;
  if (usd < 0.000001) return "< $0.000001";
  return `$${Number(usd.toPrecision(2)).toFixed(7).replace(/0+$/, "")}`;
}

/** What the calls cost; "?" marks calls of models the price table lacks (cost unknown).
 * Empty when nothing was spent, so a run without AI nodes shows nothing. */
export function costText(usage: Usage | null | undefined): string {
  const unpriced = usage?.unpriced_calls ?? 0;
  const usd = usage?.cost_usd ?? 0;
  if (usd <= 0) return unpriced > 0 ? "?" : "";
  return unpriced > 0 ? `${formatCost(usd)} + ?` : formatCost(usd);
}

const n = (value: number | undefined) => (value ?? 0).toLocaleString("en-US");

/** "2 calls · 1,234 tokens (1,000 in / 234 out)"; empty without usage. */
export function tokensText(usage: Usage | null | undefined): string {
  if (!usage?.calls) return "";
  const calls = usage.calls === 1 ? "1 call" : `${n(usage.calls)} calls`;
  return `${calls} · ${n(usage.total_tokens)} tokens (${n(usage.input_tokens)} in / ${n(usage.output_tokens)} out)`;
}

/** "1,234 tokens · $0.0001" for an AI node; empty for a node that called no model. */
export function nodeUsageText(usage: Usage | null | undefined): string {
  if (!usage?.calls) return "";
  return [`${n(usage.total_tokens)} tokens`, costText(usage)].filter(Boolean).join(" · ");
}
