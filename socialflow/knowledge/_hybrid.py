"""Fusion of dense and keyword result lists for the stores' hybrid search: by rank (RRF) or by
normalised score (a convex combination)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.documents import Document

__all__ = [
    "DEFAULT_DENSE_WEIGHT",
    "RRF_K",
    "HybridFusion",
    "Normalisation",
    "convex_fusion",
    "fuse_ranks",
    "reciprocal_rank_fusion",
]

# The constant of Cormack et al. (2009); it damps the weight of the very first ranks.
RRF_K = 60


def fuse_ranks(
    rankings: Sequence[Sequence[Hashable]], *, k: int, rrf_k: int = RRF_K
) -> list[tuple[Any, float]]:
    """Reciprocal-rank fusion of ranked keys: ``sum(1 / (rrf_k + rank))`` per key, best first.

    Ties keep the order in which keys were first seen.
    """
    scores: dict[Hashable, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (rrf_k + rank)
    order = sorted(scores, key=lambda key: scores[key], reverse=True)
    return [(key, scores[key]) for key in order[:k]]


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[tuple[Document, float]]], *, k: int, rrf_k: int = RRF_K
) -> list[tuple[Document, float]]:
    """Fuse ranked document lists by reciprocal rank; documents are matched by ``Document.id``.

    Args:
        rankings: Result lists, best first.
        k: How many fused results to return.
        rrf_k: The fusion constant.

    Returns:
        Up to ``k`` documents with their fused score, best first.
    """
    docs: dict[str, Document] = {}
    keys: list[list[str]] = []
    for ranking in rankings:
        keys.append([])
        for doc, _score in ranking:
            key = doc.id or doc.page_content
            docs.setdefault(key, doc)
            keys[-1].append(key)
    return [(docs[key], score) for key, score in fuse_ranks(keys, k=k, rrf_k=rrf_k)]


#: how scores are put on one scale before the convex combination: ``tmm`` (theoretical min-max:
#: from each score function's lowest possible value, -1 for cosine and 0 for BM25, to the best
#: score of the list), ``minmax`` (lowest to best score of the list) or ``zscore``
Normalisation = Literal["tmm", "minmax", "zscore"]
_FLOORS = {"dense": -1.0, "keyword": 0.0}


def _normalised(
    scored: Sequence[tuple[Hashable, float]], method: Normalisation, floor: float
) -> tuple[dict[Hashable, float], float]:
    """Each key's score on the common scale, and the value a key missing from the list gets."""
    if not scored:
        return {}, 0.0
    values = [score for _, score in scored]
    if method == "zscore":
        mean = sum(values) / len(values)
        spread = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5 or 1.0
        normal = {key: (score - mean) / spread for key, score in scored}
        return normal, min(normal.values())
    low = floor if method == "tmm" else min(values)
    high = max(values)
    width = (high - low) or 1.0
    return {key: (score - low) / width for key, score in scored}, 0.0


def convex_fusion(
    dense: Sequence[tuple[Hashable, float]],
    keyword: Sequence[tuple[Hashable, float]],
    *,
    k: int,
    dense_weight: float,
    normalisation: Normalisation = "tmm",
) -> list[tuple[Any, float]]:
    """A convex combination of normalised dense and keyword scores, best first.

    ``dense_weight * dense + (1 - dense_weight) * keyword`` per key, after each list's scores are
    normalised (``Normalisation``); a key found by one side only gets the other side's floor.
    Unlike rank fusion it keeps how far apart the scores are, so a much stronger retriever is
    not outvoted by a weak one's first rank (Bruch, Gai and Ingber, ACM TOIS 2023).
    """
    left, left_missing = _normalised(dense, normalisation, _FLOORS["dense"])
    right, right_missing = _normalised(keyword, normalisation, _FLOORS["keyword"])
    keys = list(dict.fromkeys([key for key, _ in dense] + [key for key, _ in keyword]))
    scores = {
        key: dense_weight * left.get(key, left_missing)
        + (1.0 - dense_weight) * right.get(key, right_missing)
        for key in keys
    }
    order = sorted(keys, key=lambda key: scores[key], reverse=True)
    return [(key, scores[key]) for key in order[:k]]


#: the default of convex fusion, chosen on SciFact's 809 train queries with MiniLM and BM25
#: (bench/retrieval.py prints the sweep): z-scores, dense weighted 0.4 (nDCG@10 0.735 there;
#: theoretical min-max peaked at 0.724). Reported on the test queries, never tuned on them.
DEFAULT_DENSE_WEIGHT = 0.4
DEFAULT_NORMALISATION: Normalisation = "zscore"


@dataclass(frozen=True, slots=True)
class HybridFusion:
    """How a store fuses its dense and keyword candidates.

    Attributes:
        method: ``convex`` (normalised scores, weighted) or ``rrf`` (reciprocal ranks).
        dense_weight: Convex only: the dense side's weight, 0 to 1 (BM25 gets the rest).
        normalisation: Convex only: how each side's scores are put on one scale.
    """

    method: Literal["convex", "rrf"] = "convex"
    dense_weight: float = DEFAULT_DENSE_WEIGHT
    normalisation: Normalisation = DEFAULT_NORMALISATION

    def fuse(
        self,
        dense: Sequence[tuple[Hashable, float]],
        keyword: Sequence[tuple[Hashable, float]],
        *,
        k: int,
    ) -> list[tuple[Any, float]]:
        """The best ``k`` keys of both lists (scored best first), by this fusion."""
        if self.method == "rrf":
            return fuse_ranks([[key for key, _ in dense], [key for key, _ in keyword]], k=k)
        return convex_fusion(
            dense,
            keyword,
            k=k,
            dense_weight=self.dense_weight,
            normalisation=self.normalisation,
        )

    def fuse_documents(
        self,
        dense: Sequence[tuple[Document, float]],
        keyword: Sequence[tuple[Document, float]],
        *,
        k: int,
    ) -> list[tuple[Document, float]]:
        """``fuse`` for documents, matched by ``Document.id``."""
        docs: dict[str, Document] = {}

        def keyed(results: Sequence[tuple[Document, float]]) -> list[tuple[str, float]]:
            out = []
            for doc, score in results:
                key = doc.id or doc.page_content
                docs.setdefault(key, doc)
                out.append((key, score))
            return out

        fused = self.fuse(keyed(dense), keyed(keyword), k=k)
        return [(docs[key], score) for key, score in fused]
