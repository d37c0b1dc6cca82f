import { useQuery } from "@tanstack/react-query";
import { api, ok } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { StatusBadge } from "../components/Status";
import { textPreview } from "../instagram/ledger";
import { verdictText } from "../instagram/samples";

/** What a finished test run wrote to the Instagram send ledger: sandboxed, never sent. */
export function TestLedger({ workspaceId, executionId, finished }: { workspaceId: string; executionId: string; finished: boolean }) {
  const ledger = useQuery({
    queryKey: ["ig-outbox-run", workspaceId, executionId],
    queryFn: async () =>
      ok(
        await api.GET("/api/workspaces/{workspace_id}/instagram/outbox", {
          params: { path: { workspace_id: workspaceId }, query: { execution_id: executionId, limit: 200 } },
        }),
      ),
    enabled: finished,
  });
  const entries = ledger.data?.items ?? [];
  return (
    <section className="test-ledger" aria-label="Instagram actions of this test">
      <h3>Instagram actions</h3>
      {!finished && <p className="muted small">Shown when the test run has finished.</p>}
      <ErrorNote error={ledger.error} />
      {ledger.isSuccess && entries.length === 0 && <p className="muted">Nothing would be sent.</p>}
      {entries.length > 0 && (
        <ul className="ledger-entries">
          {entries.map((entry) => {
            const verdict = verdictText(entry);
            return (
              <li key={entry.id} data-status={entry.status}>
                <div className="row">
                  <strong>{entry.action}</strong>
                  <StatusBadge status={entry.status} />
                  <span className="muted small">
                    to <span className="mono">{entry.target}</span>
                  </span>
                </div>
                {textPreview(entry.payload, 500) && <p className="ledger-text">{textPreview(entry.payload, 500)}</p>}
                {verdict && <p className={entry.status === "refused" ? "error" : "muted small"}>{verdict}</p>}
                {entry.error_message && (
                  <p className="error">
                    {entry.error_code}: {entry.error_message}
                  </p>
                )}
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}
