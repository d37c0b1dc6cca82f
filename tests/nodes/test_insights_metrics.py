"""The Get insights node offers exactly the metrics the publishing gateway asks Meta for.

The node keeps its own lists (nodes know no database, and the gateway does): this holds the two
in step, so a metric Meta drops is removed from both or the test fails."""

from __future__ import annotations

from typing import get_args

from socialflow.nodes.builtins import instagram_publishing
from socialflow.publishing import ACCOUNT_METRICS, MEDIA_METRICS


def test_the_node_and_the_gateway_name_the_same_metrics() -> None:
    assert get_args(instagram_publishing.MediaMetric) == MEDIA_METRICS
    assert get_args(instagram_publishing.AccountMetric) == ACCOUNT_METRICS
