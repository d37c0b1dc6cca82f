"""The rotate node: one of several texts per run, so repeated public replies do not all read
the same (Instagram hides identical replies as spam).

The pick is a hash of a key (by default the comment's id) modulo the number of texts: the same
event always gets the same text, so a retried or resumed run never changes its mind, and many
events spread evenly over the texts without any stored counter.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

from pydantic import Field

from socialflow.nodes._base import BaseNode, NodeConfig, NodeContext, Port
from socialflow.nodes._template import Template

__all__ = ["RotateNode", "pick"]


def pick(key: str, count: int) -> int:
    """The index, in ``range(count)``, that ``key`` always picks."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


class RotateNode(BaseNode):
    """Picks one of several texts per run, the same one for the same key."""

    kind = "data.rotate"
    title = "Rotate text"
    category = "data"
    icon = "shuffle"
    description = (
        "Picks one of several texts (e.g. public replies) per run: the same key (by default "
        "the comment's id) always picks the same text, different keys spread over all of them."
    )
    example_config: ClassVar[dict[str, Any]] = {
        "texts": ["Sent you a DM!", "Check your inbox 📩", "Just messaged you!"],
        "key": "",
    }
    inputs = (Port(name="in", description="Optional: passed on."),)
    outputs = (Port(name="out", type="json", description="text, index (from 0) and count."),)

    class Config(NodeConfig):
        texts: list[Template] = Field(
            min_length=1,
            max_length=50,
            description="The texts to rotate through (1 to 50); templates allowed.",
        )
        key: Template = Field(
            default="{{ trigger.comment_id }}",
            max_length=500,
            description="What picks the text: the same key always picks the same one; "
            "empty: the run's id.",
        )

    config: Config

    async def run(self, ctx: NodeContext, *args: Any, **inputs: Any) -> dict[str, Any]:
        texts = self.config.texts
        key = ctx.render_text(self.config.key, field_name="key") or str(ctx.execution_id)
        index = pick(key, len(texts))
        text = ctx.render_text(texts[index], field_name=f"texts.{index}")
        return {"out": {"text": text, "index": index, "count": len(texts)}}
