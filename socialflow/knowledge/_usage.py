"""Token usage of AI nodes and its cost, from the settings' price table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    from socialflow.core.settings import LLMPrice, Settings

__all__ = ["Usage", "price_of", "sum_usage"]


class Usage(BaseModel):
    """Tokens spent by an AI node (or summed over a run) and what they cost.

    ``cost_usd`` is the sum over priced calls; ``unpriced_calls`` counts calls whose model is
    not in the price table (their cost is unknown, not zero).
    """

    provider: str | None = None
    model: str | None = None
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_calls: int = 0

    def plus(self, other: Usage) -> Usage:
        """The sum of two usages; provider and model are kept only when both agree."""
        return Usage(
            provider=self.provider if self.provider == other.provider else None,
            model=self.model if self.model == other.model else None,
            calls=self.calls + other.calls,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            cost_usd=round(self.cost_usd + other.cost_usd, 8),
            unpriced_calls=self.unpriced_calls + other.unpriced_calls,
        )


def price_of(settings: Settings, model: str) -> LLMPrice | None:
    """The price of ``model``: an exact entry of the table, else its longest listed prefix.

    Args:
        settings: ``settings.knowledge.llm_prices`` is the table.
        model: Model id as the provider reports it (``gpt-4o-mini-2024-07-18``).

    Returns:
        The price, or None when the model is not listed.
    """
    prices = settings.knowledge.llm_prices
    if model in prices:
        return prices[model]
    listed = [name for name in prices if model.startswith(name)]
    return prices[max(listed, key=len)] if listed else None


def sum_usage(node_outputs: Iterable[Mapping[str, Any]]) -> Usage:
    """Total usage of a run, from the recorded outputs of its nodes.

    AI nodes put a ``usage`` object either on a port of that name or inside the value of the
    port that fired (the intent classifier); both are counted, anything else is ignored.

    Args:
        node_outputs: The output mapping (port → value) of each node run.
    """
    total: Usage | None = None
    for output in node_outputs:
        for port, value in output.items():
            found = value if port == "usage" else None
            if found is None and isinstance(value, Mapping):
                found = value.get("usage")
            if not isinstance(found, Mapping):
                continue
            try:
                usage = Usage.model_validate(found)
            except ValueError:
                continue
            total = usage if total is None else total.plus(usage)
    return total or Usage()
