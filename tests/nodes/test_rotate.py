"""The rotate node picks one of several texts per run: the same key always the same text,
many keys spread over all of them."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from pydantic import ValidationError

from socialflow.nodes.builtins import RotateNode
from socialflow.nodes.builtins.rotate import pick
from tests.fixtures.context import make_context

TEXTS = ["A @{{ trigger.from_username }}", "B @{{ trigger.from_username }}", "C"]


def node(**config: Any) -> RotateNode:
    return RotateNode(RotateNode.Config.model_validate({"texts": TEXTS, **config}))


async def picked(comment_id: str, **config: Any) -> dict[str, Any]:
    trigger = {"comment_id": comment_id, "from_username": "ann"}
    out: dict[str, Any] = (await node(**config).run(make_context(trigger=trigger)))["out"]
    return out


async def test_the_same_comment_always_gets_the_same_text_rendered() -> None:
    first = await picked("17900000000000001")
    assert first == await picked("17900000000000001")  # a retried run says the same
    assert first["count"] == 3 and first["index"] == pick("17900000000000001", 3)
    assert first["text"] == TEXTS[first["index"]].replace("{{ trigger.from_username }}", "ann")


async def test_many_comments_spread_over_every_text() -> None:
    counts = Counter([(await picked(f"1790{n:013d}"))["index"] for n in range(300)])
    assert set(counts) == {0, 1, 2}
    assert min(counts.values()) > 60  # about 100 each


async def test_an_empty_key_picks_by_the_run() -> None:
    indexes = set()
    for _ in range(40):
        ctx = make_context(trigger={"from_username": "ann"})
        indexes.add((await node(key="").run(ctx))["out"]["index"])
    assert indexes == {0, 1, 2}


@pytest.mark.parametrize(
    "config",
    [{"texts": []}, {"texts": ["x"] * 51}, {"key": "k" * 501}, {"texts": ["{{ oops"]}],
)
def test_config_limits(config: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        node(**config)
