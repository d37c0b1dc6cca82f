// Pure logic of testing a draft with sample Instagram events: which sample fits the draft's
// trigger, and what the test run's ledger entries say.

export interface SampleLike {
  kind: string;
  label: string;
  payload: Record<string, unknown>;
}

const PREFIX = "instagram.";

/** The sample kind (`comment`, `dm`, `mention`) of the draft's Instagram trigger, if it has one:
 * the first node of the trigger category whose kind is `instagram.<sample kind>`. */
export function instagramTriggerSample(
  kinds: readonly string[],
  categoryOf: (kind: string) => string | undefined,
): string | undefined {
  const trigger = kinds.find((kind) => kind.startsWith(PREFIX) && categoryOf(kind) === "trigger");
  return trigger?.slice(PREFIX.length);
}

/** Whether the draft has any Instagram node (a test run of it may write to the ledger). */
export function usesInstagram(kinds: readonly string[]): boolean {
  return kinds.some((kind) => kind.startsWith(PREFIX));
}

/** The sample to preselect: the one of the trigger's own kind, else none. */
export function preselected<S extends SampleLike>(samples: readonly S[], triggerSample: string | undefined): S | undefined {
  return triggerSample ? samples.find((sample) => sample.kind === triggerSample) : undefined;
}

/** A sample's payload as the editable JSON of the test panel. */
export function sampleText(sample: SampleLike): string {
  return JSON.stringify(sample.payload, null, 2);
}

/** The policy's word on a ledger entry: why it was refused, or a note on how it was allowed. */
export function verdictText(entry: { policy_verdict: string; policy_reason?: string | null }): string {
  if (entry.policy_verdict === "allowed") return entry.policy_reason ?? "";
  return entry.policy_reason ? `${entry.policy_verdict}: ${entry.policy_reason}` : entry.policy_verdict;
}
