"""Retrieval quality: BM25, dense MiniLM, rank fusion and convex fusion, with and without chunk
context, on SciFact (train and test) and the harvestbox-faq help articles (dev and test).

Sets (BEIR layout, ``/work/shared/data/<name>`` or the copy in ``bench/data/<name>``):

- ``scifact``: every abstract one record (``title. abstract``), as BEIR indexes it; with
  ``--scifact-chunks`` also every abstract uploaded as a plain-text file and chunked by the
  ingestion path, without and with chunk context (the title in front of every chunk's
  embedded and indexed text).
- ``faq``: every help article uploaded as a plain-text file and chunked by the ingestion path
  (two chunks each), without and with chunk context.

Each query gets the 50 best chunks of dense search and of BM25 from an embedded store; a
document ranks at its best chunk. Modes: BM25, dense, reciprocal-rank fusion, convex fusion
(z-scores) at the default dense weight and at the weight tuned on the set's tuning split
(SciFact train, FAQ dev). Prints Recall@1, Recall@5, MRR@10 and nDCG@10 per mode, against the
better of BM25 and dense ("best half").

Embeddings are cached under ``.cache/bench`` keyed by model and texts, so only the first run
pays for embedding (SciFact: ~10 minutes on two cores; ``--scifact-chunks`` twice that).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._corpus import (  # noqa: E402
    Collection,
    Qrels,
    build_store,
    cached_embeddings,
    data_dir,
    documents,
    ingested,
    load_corpus,
    load_split,
    metrics,
    one_record_per_document,
)
from bench._harness import print_table  # noqa: E402
from socialflow.core.settings import Settings  # noqa: E402
from socialflow.knowledge import (  # noqa: E402
    DEFAULT_DENSE_WEIGHT,
    DEFAULT_NORMALISATION,
    EmbeddedStore,
    MiniLMEmbeddings,
    convex_fusion,
    fuse_ranks,
)

WEIGHTS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
NORMALISATIONS = ("tmm", "minmax", "zscore")
DEFAULT_MODE = f"convex:{DEFAULT_NORMALISATION}:{DEFAULT_DENSE_WEIGHT}"
Lists = tuple[list[tuple[str, float]], list[tuple[str, float]]]
Means = tuple[float, float, float, float]


@dataclass
class Run:
    """One collection of one set, searched for every query of every split."""

    set_name: str
    collection: Collection
    tune_split: str
    splits: dict[str, tuple[dict[str, str], Qrels]]
    lists: dict[str, dict[str, Lists]]


def candidates(
    store: EmbeddedStore, queries: dict[str, str], vectors: np.ndarray, n: int
) -> dict[str, Lists]:
    """Per query: the dense and the BM25 candidate chunks, ``(chunk id, score)`` best first."""
    out: dict[str, Lists] = {}
    for (qid, text), vector in zip(queries.items(), vectors, strict=True):
        dense = [(str(d.id), s) for d, s in store._dense_search(vector, n, None)]
        keyword = [(str(d.id), s) for d, s in store.keyword_search(text, k=n)]
        out[qid] = (dense, keyword)
    return out


def rank(lists: Lists, mode: str) -> list[str]:
    """The chunk ranking of one query in one mode."""
    dense, keyword = lists
    n = len(dense) + len(keyword)  # every candidate of either side
    if mode == "bm25":
        return [c for c, _ in keyword]
    if mode == "dense":
        return [c for c, _ in dense]
    if mode == "rrf":
        return [c for c, _ in fuse_ranks([[c for c, _ in dense], [c for c, _ in keyword]], k=n)]
    _, normalisation, weight = mode.split(":")
    fused = convex_fusion(
        dense,
        keyword,
        k=n,
        dense_weight=float(weight),
        normalisation=normalisation,  # type: ignore[arg-type]
    )
    return [c for c, _ in fused]


def evaluate(run: Run, split: str, mode: str) -> Means:
    """Mean Recall@1, Recall@5, MRR@10 and nDCG@10 of one mode over a split's queries."""
    qrels = run.splits[split][1]
    rows = [
        metrics(documents(rank(lists, mode), run.collection.doc_of), qrels[qid])
        for qid, lists in run.lists[split].items()
    ]
    return tuple(np.mean(np.asarray(rows), axis=0))  # type: ignore[return-value]


def search(
    set_name: str,
    collection: Collection,
    splits: dict[str, tuple[dict[str, str], Qrels]],
    tune_split: str,
    model: MiniLMEmbeddings,
    n: int,
) -> Run:
    """Embed the collection (cached), build a store and collect every query's candidates."""
    vectors = cached_embeddings(model, collection.indexed, f"{collection.name}-chunks")
    lists = {}
    with tempfile.TemporaryDirectory() as folder:
        store = build_store(Path(folder), collection, vectors, model)
        for split, (queries, _) in splits.items():
            qvectors = cached_embeddings(model, list(queries.values()), f"{set_name}-{split}-q")
            lists[split] = candidates(store, queries, qvectors, n)
        store.close()
    return Run(set_name, collection, tune_split, splits, lists)


def tuned(run: Run, *, show_sweep: bool) -> str:
    """The convex mode with the best nDCG@10 (then MRR@10) on the run's tuning split."""
    norms = NORMALISATIONS if show_sweep else (DEFAULT_NORMALISATION,)
    sweep = {
        f"convex:{norm}:{w}": evaluate(run, run.tune_split, f"convex:{norm}:{w}")
        for norm in norms
        for w in WEIGHTS
    }
    if show_sweep:
        print_table(
            f"{run.collection.name}, {run.tune_split} ({len(run.lists[run.tune_split])} "
            "queries): convex fusion, nDCG@10 per dense weight",
            ["normalisation", *[str(w) for w in WEIGHTS]],
            [[n, *[f"{sweep[f'convex:{n}:{w}'][3]:.3f}" for w in WEIGHTS]] for n in norms],
        )
    zscore = {m: v for m, v in sweep.items() if m.startswith(f"convex:{DEFAULT_NORMALISATION}:")}
    return max(zscore, key=lambda m: (zscore[m][3], zscore[m][2]))


def report(run: Run, split: str, tuned_mode: str) -> list[str]:
    """Print one split's table; return the bar's verdicts for the summary."""
    modes = {"BM25": "bm25", "dense (MiniLM)": "dense", "RRF": "rrf"}
    modes[f"convex {DEFAULT_DENSE_WEIGHT} (default)"] = DEFAULT_MODE
    modes[f"convex {tuned_mode.rsplit(':', 1)[1]} (tuned on {run.tune_split})"] = tuned_mode
    means = {label: evaluate(run, split, mode) for label, mode in modes.items()}
    best_ndcg = max(means["BM25"][3], means["dense (MiniLM)"][3])
    best_mrr = max(means["BM25"][2], means["dense (MiniLM)"][2])
    print_table(
        f"{run.collection.name}, {split}: {len(run.lists[split])} queries, "
        f"{len(set(run.collection.doc_of.values()))} documents, {len(run.collection.ids)} chunks",
        ["retrieval", "R@1", "R@5", "MRR@10", "nDCG@10", "nDCG / best half", "MRR / best half"],
        [
            [
                label,
                f"{m[0]:.3f}",
                f"{m[1]:.3f}",
                f"{m[2]:.3f}",
                f"{m[3]:.3f}",
                f"{m[3] / best_ndcg:.3f}",
                f"{m[2] / best_mrr:.3f}",
            ]
            for label, m in means.items()
        ],
    )
    verdicts = []
    for label in list(means)[3:]:
        holds = means[label][3] >= best_ndcg and means[label][2] >= best_mrr
        verdicts.append(
            f"{run.collection.name} {split}: {label}: nDCG@10 {means[label][3]:.3f} "
            f"(best half {best_ndcg:.3f}), MRR@10 {means[label][2]:.3f} (best half "
            f"{best_mrr:.3f}): {'meets' if holds else 'MISSES'} the bar"
        )
    return verdicts


def main() -> None:
    """Search every set and collection; tune on each set's tuning split; report every split."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default="faq,scifact", help="comma-separated: faq, scifact")
    parser.add_argument(
        "--scifact-chunks",
        action="store_true",
        help="also chunk SciFact through the ingestion path, without and with context",
    )
    parser.add_argument("--candidates", type=int, default=50, help="candidates per side")
    parser.add_argument("--queries", type=int, default=0, help="only the first N per split")
    args = parser.parse_args()

    model = MiniLMEmbeddings.shared()
    settings = Settings()
    runs: list[tuple[Run, bool]] = []
    for set_name in args.sets.split(","):
        folder = data_dir({"faq": "harvestbox-faq", "scifact": "scifact"}[set_name])
        corpus = load_corpus(folder)
        tune_split = "train" if set_name == "scifact" else "dev"
        report_splits = (tune_split, "test")
        splits = {split: load_split(folder, split) for split in report_splits}
        if args.queries:
            splits = {s: (dict(list(q.items())[: args.queries]), r) for s, (q, r) in splits.items()}
        collections: list[Collection] = []
        if set_name == "scifact":
            collections.append(one_record_per_document("scifact", corpus))
        if set_name == "faq" or args.scifact_chunks:
            for context in (False, True):
                name = f"{set_name}-chunks" + ("+context" if context else "")
                collections.append(ingested(name, corpus, context=context, settings=settings))
        for n, collection in enumerate(collections):
            run = search(set_name, collection, splits, tune_split, model, args.candidates)
            runs.append((run, n == 0))

    summary = []
    for run, first in runs:
        mode = tuned(run, show_sweep=first)
        print(f"\n{run.collection.name}: tuned on {run.tune_split}: {mode}")
        for split in run.splits:
            summary += report(run, split, mode)
    print(f"\ndefault: {DEFAULT_MODE} (knowledge.hybrid_dense_weight; a base may set its own)")
    print("bar: hybrid >= the better of BM25 and dense on nDCG@10 and MRR@10")
    for line in summary:
        print(f"  {line}")


if __name__ == "__main__":
    main()
