"""Reciprocal-rank fusion of dense and keyword result lists, for the stores' hybrid search."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from langchain_core.documents import Document

__all__ = ["RRF_K", "fuse_ranks", "reciprocal_rank_fusion"]

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
