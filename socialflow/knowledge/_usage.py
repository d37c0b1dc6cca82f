"""Token usage of AI nodes and its cost, from the settings' price table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import reduce
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

    @classmethod
    def of_output(cls, output: Any) -> Usage | None:
        """What one node reported in its output (port → value); None when it called no model.

        AI nodes put a ``usage`` object either on a port of that name or inside the value of the
        port that fired (the intent classifier); both are counted. Only objects with this
        model's fields and nothing else count, so a ``usage`` key in some API's answer that an
        HTTP node passes on is not taken for model usage.
        """
        if not isinstance(output, Mapping):
            return None
        total: Usage | None = None
        for port, value in output.items():
            found = value if port == "usage" else None
            if found is None and isinstance(value, Mapping):
                found = value.get("usage")
            if not isinstance(found, Mapping) or not found.keys() <= _FIELDS:
                continue
            try:
                usage = cls.model_validate(found)
            except ValueError:
                continue
            total = usage if total is None else total.plus(usage)
        if total is None or (total.calls == 0 and total.total_tokens == 0):
            return None
        return total


_FIELDS = frozenset(Usage.model_fields)


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
    """Total usage of a run, from the recorded outputs of its nodes (see ``Usage.of_output``).

    Args:
        node_outputs: The output mapping (port → value) of each node run.

    Returns:
        The sum; all zeros when no node called a model.
    """
    found = [u for u in map(Usage.of_output, node_outputs) if u is not None]
    return reduce(Usage.plus, found) if found else Usage()
