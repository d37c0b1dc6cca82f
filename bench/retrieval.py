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
from socialflow.knowledge import (  # noqa: E402
    EmbeddedStore,
    MiniLMEmbeddings,
    convex_fusion,
    fuse_ranks,
)

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


WEIGHTS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
NORMALISATIONS = ("tmm", "minmax", "zscore")
Lists = tuple[list[tuple[str, float]], list[tuple[str, float]]]


def candidates(
    store: EmbeddedStore, queries: dict[str, str], vectors: np.ndarray, n: int
) -> dict[str, Lists]:
    """Per query: the dense and the BM25 candidate lists, ``(doc id, score)`` best first."""
    out: dict[str, Lists] = {}
    for (qid, text), vector in zip(queries.items(), vectors, strict=True):
        dense = [(d.metadata["doc"], s) for d, s in store._dense_search(vector, n, None)]
        keyword = [(d.metadata["doc"], s) for d, s in store.keyword_search(text, k=n)]
        out[qid] = (dense, keyword)
    return out


def evaluate(
    lists: dict[str, Lists], qrels: dict[str, dict[str, int]], mode: str
) -> tuple[float, float, float]:
    """Mean Recall@5, MRR@10 and nDCG@10 of one mode over the queries."""
    rows = []
    for qid, (dense, keyword) in lists.items():
        if mode == "bm25":
            ranked = [d for d, _ in keyword[:10]]
        elif mode == "dense":
            ranked = [d for d, _ in dense[:10]]
        elif mode == "rrf":
            ranked = [
                d for d, _ in fuse_ranks([[d for d, _ in dense], [d for d, _ in keyword]], k=10)
            ]
        else:
            _, normalisation, weight = mode.split(":")
            fused = convex_fusion(
                dense,
                keyword,
                k=10,
                dense_weight=float(weight),
                normalisation=normalisation,  # type: ignore[arg-type]
            )
            ranked = [d for d, _ in fused]
        rows.append(metrics(ranked, qrels[qid]))
    return tuple(np.mean(np.asarray(rows), axis=0))  # type: ignore[return-value]


def load_split(data: Path, split: str) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """Queries and qrels of ``split``: test (queries.jsonl, qrels/test.tsv) or train
    (queries-train.jsonl, qrels/train.tsv; see the data folder's README)."""
    qfile = data / ("queries.jsonl" if split == "test" else f"queries-{split}.jsonl")
    rfile = data / "qrels" / f"{split}.tsv"
    if not qfile.exists() or not rfile.exists():
        sys.exit(f"{split} split missing: {qfile} and {rfile} (see {data.parent}/README.md)")
    qrels: dict[str, dict[str, int]] = {}
    for line in rfile.read_text().splitlines()[1:]:
        qid, did, score = line.split("\t")
        if int(score) > 0:
            qrels.setdefault(qid, {})[did] = int(score)
    queries = {}
    for line in qfile.read_text().splitlines():
        q = json.loads(line)
        if q["_id"] in qrels:
            queries[q["_id"]] = q["text"]
    return queries, qrels


def main() -> None:
    """Build the store; tune the convex fusion on the train split; report every mode on test."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="SciFact folder (BEIR layout)")
    parser.add_argument("--candidates", type=int, default=50, help="hybrid candidates per side")
    parser.add_argument("--queries", type=int, default=0, help="only the first N queries")
    args = parser.parse_args()

    corpus, _, _ = load(args.data)
    model = MiniLMEmbeddings.shared()
    doc_ids = list(corpus)
    doc_vectors = cached_embeddings(model, [corpus[d] for d in doc_ids], "scifact-corpus")
    splits = {name: load_split(args.data, name) for name in ("train", "test")}
    if args.queries:
        splits = {
            name: (dict(list(q.items())[: args.queries]), r) for name, (q, r) in splits.items()
        }

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
        lists = {}
        for name, (queries, _) in splits.items():
            vectors = cached_embeddings(model, list(queries.values()), f"scifact-{name}-queries")
            lists[name] = candidates(store, queries, vectors, args.candidates)
        store.close()

    train_lists, train_qrels = lists["train"], splits["train"][1]
    sweep = {
        f"convex:{norm}:{weight}": evaluate(train_lists, train_qrels, f"convex:{norm}:{weight}")
        for norm in NORMALISATIONS
        for weight in WEIGHTS
    }
    chosen = max(sweep, key=lambda mode: (sweep[mode][2], sweep[mode][1]))
    print_table(
        f"SciFact train ({len(train_lists)} queries): convex fusion, nDCG@10 per dense weight",
        ["normalisation", *[str(w) for w in WEIGHTS]],
        [
            [norm, *[f"{sweep[f'convex:{norm}:{w}'][2]:.3f}" for w in WEIGHTS]]
            for norm in NORMALISATIONS
        ],
    )
    print(f"chosen on train: {chosen}")
    for name in ("train", "test"):
        split_lists, qrels = lists[name], splits[name][1]
        means = {
            mode: evaluate(split_lists, qrels, mode) for mode in ("bm25", "dense", "rrf", chosen)
        }
        base = means["bm25"]
        best_half = max(means["bm25"][2], means["dense"][2])
        print_table(
            f"SciFact {name}: {len(split_lists)} queries, {len(doc_ids)} documents "
            f"({args.candidates} candidates per side)",
            ["retrieval", "Recall@5", "MRR@10", "nDCG@10", "nDCG@10 / BM25", "vs best half"],
            [
                [
                    mode,
                    f"{m[0]:.3f}",
                    f"{m[1]:.3f}",
                    f"{m[2]:.3f}",
                    f"{m[2] / base[2]:.3f}",
                    f"{m[2] / best_half:.3f}",
                ]
                for mode, m in means.items()
            ],
        )


if __name__ == "__main__":
    main()
