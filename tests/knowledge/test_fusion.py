"""Score-aware fusion: normalised scores weighted, so a wide margin on one side counts."""

from __future__ import annotations

import pytest

from socialflow.core.settings import KnowledgeSettings
from socialflow.knowledge import DEFAULT_DENSE_WEIGHT, HybridFusion, convex_fusion, fuse_ranks

DENSE = [("a", 0.92), ("b", 0.41), ("c", 0.40)]
KEYWORD = [("b", 12.0), ("c", 11.5), ("d", 3.0)]


def test_a_wide_dense_margin_beats_the_keyword_first_rank() -> None:
    # rank fusion sees only ranks: b is first on one side and second on the other, so it wins
    assert fuse_ranks([[k for k, _ in DENSE], [k for k, _ in KEYWORD]], k=1)[0][0] == "b"
    # by score, a is far ahead on the dense side and wins once dense counts enough
    assert convex_fusion(DENSE, KEYWORD, k=1, dense_weight=0.7, normalisation="zscore")[0][0] == "a"
    # and the keyword side decides when it is weighted up
    assert convex_fusion(DENSE, KEYWORD, k=1, dense_weight=0.2, normalisation="zscore")[0][0] == "b"


@pytest.mark.parametrize("normalisation", ["tmm", "minmax", "zscore"])
def test_every_key_of_both_lists_is_ranked_once(normalisation: str) -> None:
    fused = convex_fusion(
        DENSE,
        KEYWORD,
        k=10,
        dense_weight=0.5,
        normalisation=normalisation,  # type: ignore[arg-type]
    )
    assert sorted(key for key, _ in fused) == ["a", "b", "c", "d"]
    scores = [score for _, score in fused]
    assert scores == sorted(scores, reverse=True)
    # a key found by one side only is never above one both sides found with better scores
    order = [key for key, _ in fused]
    assert order.index("b") < order.index("d")


def test_weights_at_the_ends_are_one_side_alone() -> None:
    only_dense = convex_fusion(DENSE, KEYWORD, k=3, dense_weight=1.0, normalisation="minmax")
    assert [k for k, _ in only_dense] == ["a", "b", "c"]
    only_keyword = convex_fusion(DENSE, KEYWORD, k=3, dense_weight=0.0, normalisation="tmm")
    assert [k for k, _ in only_keyword] == ["b", "c", "d"]


def test_empty_and_flat_lists_do_not_divide_by_zero() -> None:
    assert convex_fusion([], [], k=3, dense_weight=0.5) == []
    flat = convex_fusion(
        [("x", 0.5), ("y", 0.5)], [], k=2, dense_weight=0.5, normalisation="zscore"
    )
    assert [k for k, _ in flat] == ["x", "y"]


def test_the_server_default_is_the_measured_one_and_rrf_stays_available() -> None:
    assert KnowledgeSettings().hybrid_dense_weight == DEFAULT_DENSE_WEIGHT
    assert HybridFusion().method == "convex"
    rrf = HybridFusion(method="rrf").fuse(DENSE, KEYWORD, k=1)
    assert rrf[0][0] == "b"
