"""Query latency of the embedded store at 100k chunks, against a brute-force numpy floor.

Builds one namespace of N chunks (default 100,000) in a temp folder: texts are three random
SciFact sentences each, vectors random unit float32 of 384 dimensions (query latency does
not depend on what the vectors mean), metadata ``{"doc": ...}`` with 20 chunks per document.
Then times, interleaved over the same queries:

- baseline: ``matrix @ q`` and ``argpartition`` on an in-memory float32 matrix (the floor
  every exact dense search pays);
- store dense: ``similarity_search_by_vector`` path (freshness check, product, top-k, rows
  fetched from SQLite);
- store dense + filter: the same restricted to one document's chunks;
- store BM25: keyword search over the in-memory BM25 index;
- store hybrid: dense and BM25 candidates (50 each) fused, the default retrieval.

Query embedding is not included (see ``bench/embedding.py``). Prints p50/p95 in ms and the
ratio of each p50 to the baseline's.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from langchain_core.embeddings import Embeddings  # noqa: E402

from bench._harness import percentile, print_table  # noqa: E402
from socialflow.knowledge import EmbeddedStore  # noqa: E402

DATA = Path("/work/shared/data/scifact")
DIM = 384


class _GivenVectors(Embeddings):
    """Names the vectors' model; the bench passes vectors in, so nothing is ever embedded."""

    model_name = "random-unit"
    dimension = DIM

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        raise NotImplementedError

    def embed_query(self, text: str) -> list[float]:
        raise NotImplementedError


def main() -> None:
    """Build the namespace, time every search kind, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000, help="records in the namespace")
    parser.add_argument("--queries", type=int, default=200, help="queries timed per method")
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    random.seed(7)

    sentences = []
    for line in (DATA / "corpus.jsonl").read_text().splitlines():
        sentences.extend(s for s in re.split(r"(?<=[.!?])\s+", json.loads(line)["text"]) if s)
    queries = [json.loads(q)["text"] for q in (DATA / "queries.jsonl").read_text().splitlines()]
    queries = (queries * (args.queries // len(queries) + 1))[: args.queries]

    embeddings = _GivenVectors()
    with tempfile.TemporaryDirectory() as folder:
        store = EmbeddedStore(folder, namespace="bench", embeddings=embeddings)
        started = time.perf_counter()
        matrix = rng.standard_normal((args.chunks, DIM), dtype=np.float32)
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
        for start in range(0, args.chunks, 5000):
            stop = min(start + 5000, args.chunks)
            store._upsert(  # vectors are given, nothing to embed
                [f"{i // 20:06d}#{i % 20}" for i in range(start, stop)],
                [" ".join(random.sample(sentences, 3)) for _ in range(start, stop)],
                [{"doc": f"{i // 20:06d}"} for i in range(start, stop)],
                matrix[start:stop],
                (embeddings.model_name, DIM),
            )
        print(
            f"inserted {args.chunks} chunks in {time.perf_counter() - started:.1f}s",
            file=sys.stderr,
        )
        started = time.perf_counter()
        store._dense_search(matrix[0], 1, None)  # first query loads the matrix
        load_s = time.perf_counter() - started

        vectors = rng.standard_normal((args.queries, DIM), dtype=np.float32)
        docs = [f"{random.randrange(args.chunks // 20):06d}" for _ in range(args.queries)]

        def baseline(i: int) -> None:
            scores = matrix @ vectors[i]
            top = np.argpartition(-scores, 9)[:10]
            top[np.argsort(-scores[top])]

        methods = {
            "numpy brute force (baseline)": baseline,
            "store dense": lambda i: store._dense_search(vectors[i], 10, None),
            "store dense + filter": lambda i: store._dense_search(vectors[i], 10, {"doc": docs[i]}),
            "store BM25": lambda i: store.keyword_search(queries[i], k=10),
            "store hybrid": lambda i: store.hybrid_search_by_vector(queries[i], vectors[i], k=10),
        }
        times: dict[str, list[float]] = {name: [] for name in methods}
        for i in range(args.queries):
            for name, method in methods.items():
                t = time.perf_counter()
                method(i)
                times[name].append((time.perf_counter() - t) * 1000)
        store.close()

    base = percentile(times["numpy brute force (baseline)"], 50)
    print_table(
        f"Query latency at {args.chunks:,} chunks x {DIM} dims, {args.queries} queries "
        f"(matrix load on first query: {load_s:.2f}s)",
        ["method", "p50 ms", "p95 ms", "p50 / baseline"],
        [
            [
                name,
                f"{percentile(t, 50):.2f}",
                f"{percentile(t, 95):.2f}",
                f"{percentile(t, 50) / base:.2f}",
            ]
            for name, t in times.items()
        ],
    )


if __name__ == "__main__":
    main()
