import { useState, type FormEvent } from "react";
import { useMutation } from "@tanstack/react-query";
import { api, ok } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { formatScore } from "./documents";

/** Asks a knowledge base a question and lists the chunks a flow's AI nodes would get. */
export function TrySearch({ workspaceId, baseId, ready }: { workspaceId: string; baseId: string; ready: boolean }) {
  const [query, setQuery] = useState("");
  const search = useMutation({
    mutationFn: async (question: string) =>
      ok(
        await api.POST("/api/workspaces/{workspace_id}/knowledge-bases/{knowledge_base_id}/search", {
          params: { path: { workspace_id: workspaceId, knowledge_base_id: baseId } },
          body: { query: question, k: 5 },
        }),
      ),
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (query.trim()) search.mutate(query.trim());
  };
  const hits = search.data?.hits ?? [];
  return (
    <section className="card try-search" aria-labelledby="try-search-title">
      <h2 id="try-search-title">Try a question</h2>
      <p className="muted small">
        Shows the passages AI nodes would retrieve for it, best first, scored by rank fusion of meaning and keyword search.
      </p>
      <form className="inline" onSubmit={submit} aria-label="Search the knowledge base">
        <label className="grow">
          Question
          <input value={query} onChange={(e) => setQuery(e.target.value)} maxLength={2000} placeholder="What are your opening hours?" />
        </label>
        <button type="submit" className="primary" disabled={search.isPending || !query.trim()}>
          {search.isPending ? "Searching…" : "Search"}
        </button>
      </form>
      {!ready && <p className="muted small">No document is ready yet: results appear once ingestion has finished.</p>}
      <ErrorNote error={search.error} />
      {search.isSuccess && hits.length === 0 && <p className="empty">Nothing found for “{search.data.query}”.</p>}
      {hits.length > 0 && (
        <ol className="hits" aria-label="Search results">
          {hits.map((hit) => (
            <li key={`${hit.document_id ?? hit.filename}-${hit.chunk}`} className="hit">
              <div className="hit-head">
                <strong>{hit.filename}</strong>
                {hit.section && <span className="muted small">{hit.section}</span>}
                <span className="hit-score" title="Reciprocal-rank-fusion score">
                  score {formatScore(hit.score)}
                </span>
              </div>
              <p className="hit-text">{hit.text}</p>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
