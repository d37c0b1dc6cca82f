"""Logging an exception costs about the same whatever payload the failing code held.

Through the project's own logging setup, in the console renderer (development) and the JSON
renderer (production): an exception raised while a local variable holds a 900-level nested
payload, or a huge one, and logged with that payload as a field, takes a small multiple of
the time the same exception takes with a tiny payload (measured in the same test), and writes
a bounded line. Before, the console renderer pretty-printed every local of every frame with
Rich (a 900-level payload stalled a worker for seven minutes), and JSON lines carried the whole
payload (and no traceback at all).
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from socialflow.core.logging import configure_logging, get_logger

REPEATS = 5
#: how many times the baseline a hostile payload may cost (generous: a shared 2-core machine)
SLOWDOWN = 25
MAX_LINE = 30_000


@pytest.fixture
def socialflow_logging() -> Iterator[None]:
    """Leave the ``socialflow`` logger as other tests expect it."""
    root = logging.getLogger("socialflow")
    saved = (list(root.handlers), root.level, root.propagate)
    try:
        yield
    finally:
        root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]


def _deep(levels: int) -> Any:
    value: Any = {"comment": "bottom"}
    for n in range(levels):
        value = {"level": n, "replies": [value]}
    return value


def _handle(payload: Any) -> None:
    # the payload is a local of the failing frame, as in the worker that started a run
    raise ValueError("the payload could not be handled")


def _log_failure(stream: io.StringIO, payload: Any) -> tuple[float, int]:
    """Seconds and characters it takes to log the failure of ``_handle(payload)`` (best of
    ``REPEATS``, so a scheduling hiccup does not count)."""
    log = get_logger("socialflow.tests.log_bounds")
    best, size = float("inf"), 0
    for _ in range(REPEATS):
        stream.seek(0)
        stream.truncate()
        started = time.perf_counter()
        try:
            _handle(payload)
        except ValueError:
            log.exception("event could not be run", payload=payload)
        best = min(best, time.perf_counter() - started)
        size = len(stream.getvalue())
    return best, size


@pytest.mark.timeout(120)
@pytest.mark.parametrize("json_output", [False, True], ids=["console", "json"])
@pytest.mark.usefixtures("socialflow_logging")
def test_an_exception_with_a_deep_or_huge_payload_logs_in_bounded_time_and_size(
    json_output: bool,
) -> None:
    configure_logging("INFO", json_output=json_output)
    [handler] = logging.getLogger("socialflow").handlers
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    handler.setStream(stream)

    baseline, baseline_size = _log_failure(stream, {"comment": "tiny"})
    assert "the payload could not be handled" in stream.getvalue()
    assert "Traceback" in stream.getvalue()  # both renderers keep the traceback
    payloads = {
        "900 levels": _deep(900),
        "huge": {"comments": [{"id": n, "text": "x" * 200} for n in range(20_000)]},
    }
    for name, payload in payloads.items():
        elapsed, size = _log_failure(stream, payload)
        assert elapsed <= SLOWDOWN * baseline, (name, elapsed, baseline)
        assert size <= MAX_LINE, (name, size, baseline_size)
        line = stream.getvalue()
        assert "the payload could not be handled" in line and "Traceback" in line
        if json_output:
            record = json.loads(line)
            assert record["event"] == "event could not be run"
            assert "ValueError" in record["exception"]
