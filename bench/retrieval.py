"""Retrieval quality on SciFact (BEIR test split): BM25, dense MiniLM and hybrid search.

Every corpus document (title + abstract) becomes one record of an embedded store in a temp
folder; each test query is answered by keyword search (BM25, Snowball stems), dense search
(all-MiniLM-L6-v2 cosine) and the default hybrid search (both fused by reciprocal rank).
Prints Recall@5, MRR@10 and nDCG@10 for each, with ratios against BM25, the baseline.

Corpus and query embeddings are cached under ``.cache/`` keyed by model and corpus hash, so
only the first run pays the ~10 minutes of embedding on two cores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._harness import print_table  # noqa: E402
from socialflow.knowledge import EmbeddedStore, MiniLMEmbeddings  # noqa: E402

DATA = Path("/work/shared/data/scifact")
CACHE = ROOT / ".cache" / "bench"


def load(data: Path) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, int]]]:
    """Corpus (id → title + text), test queries and their graded relevant documents."""
    corpus: dict[str, str] = {}
    for line in (data / "corpus.jsonl").read_text().splitlines():
        doc = json.loads(line)
        corpus[doc["_id"]] = f"{doc.get('title', '')}. {doc['text']}".strip()
    qrels: dict[str, dict[str, int]] = {}
    for line in (data / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        qid, did, score = line.split("\t")
        if int(score) > 0:
            qrels.setdefault(qid, {})[did] = int(score)
    queries = {}
    for line in (data / "queries.jsonl").read_text().splitlines():
        q = json.loads(line)
        if q["_id"] in qrels:
            queries[q["_id"]] = q["text"]
    return corpus, queries, qrels


def cached_embeddings(model: MiniLMEmbeddings, texts: list[str], label: str) -> np.ndarray:
    """Embeddings of ``texts``, from ``.cache/bench`` when the model and texts are unchanged."""
    digest = hashlib.sha256()
    digest.update(f"{model.model_name}/{model.max_tokens}".encode())
    for text in texts:
        digest.update(hashlib.sha256(text.encode()).digest())
    path = CACHE / f"{label}-{digest.hexdigest()[:16]}.npy"
    if path.exists():
        return np.load(path)
    print(f"embedding {len(texts)} {label} texts (cached afterwards in {path})", file=sys.stderr)
    started = time.perf_counter()
    vectors = model.embed_array(texts)
    print(f"  {len(texts) / (time.perf_counter() - started):.1f} texts/s", file=sys.stderr)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def metrics(ranked: list[str], relevant: dict[str, int]) -> tuple[float, float, float]:
    """Recall@5, MRR@10 and nDCG@10 (graded gains, BEIR's definition) of one ranking."""
    recall = sum(1 for d in ranked[:5] if d in relevant) / len(relevant)
    mrr = next((1 / (i + 1) for i, d in enumerate(ranked[:10]) if d in relevant), 0.0)
    dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
    ideal = sorted(relevant.values(), reverse=True)[:10]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return recall, mrr, dcg / idcg


def main() -> None:
    """Build the store, run every query three ways, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="SciFact folder (BEIR layout)")
    parser.add_argument("--candidates", type=int, default=50, help="hybrid candidates per side")
    parser.add_argument("--queries", type=int, default=0, help="only the first N queries")
    args = parser.parse_args()

    corpus, queries, qrels = load(args.data)
    if args.queries:
        queries = dict(list(queries.items())[: args.queries])
    model = MiniLMEmbeddings.shared()
    doc_ids = list(corpus)
    doc_vectors = cached_embeddings(model, [corpus[d] for d in doc_ids], "scifact-corpus")
    query_ids = list(queries)
    query_vectors = cached_embeddings(model, [queries[q] for q in query_ids], "scifact-queries")

    with tempfile.TemporaryDirectory() as folder:
        store = EmbeddedStore(
            folder, namespace="scifact", embeddings=model, hybrid_candidates=args.candidates
        )
        identity = (model.model_name, model.dimension)
        for start in range(0, len(doc_ids), 1000):
            part = doc_ids[start : start + 1000]
            store._upsert(
                part,
                [corpus[d] for d in part],
                [{"doc": d} for d in part],
                doc_vectors[start : start + 1000],
                identity,
            )
        scores: dict[str, list[tuple[float, float, float]]] = {
            "bm25": [],
            "dense": [],
            "hybrid": [],
        }
        for qid, vector in zip(query_ids, query_vectors, strict=True):
            text = queries[qid]
            runs = {
                "bm25": store.keyword_search(text, k=10),
                "dense": store._dense_search(vector, 10, None),
                "hybrid": store.hybrid_search_by_vector(text, vector, k=10),
            }
            for name, results in runs.items():
                ranked = [doc.metadata["doc"] for doc, _ in results]
                scores[name].append(metrics(ranked, qrels[qid]))
        store.close()

    means = {name: np.mean(np.asarray(rows), axis=0) for name, rows in scores.items()}
    base = means["bm25"]
    print_table(
        f"SciFact test: {len(query_ids)} queries, {len(doc_ids)} documents "
        f"(hybrid: {args.candidates} candidates per side, RRF k=60)",
        ["retrieval", "Recall@5", "MRR@10", "nDCG@10", "nDCG@10 / BM25"],
        [
            [name, f"{m[0]:.3f}", f"{m[1]:.3f}", f"{m[2]:.3f}", f"{m[2] / base[2]:.3f}"]
            for name, m in means.items()
        ],
    )


if __name__ == "__main__":
    main()
