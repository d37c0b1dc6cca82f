"""Structured logging for every process: structlog rendered through the standard library.

structlog is configured on import, so every ``get_logger`` line reaches the standard
``logging`` tree (and pytest's capture); ``configure_logging`` picks the output format.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

__all__ = ["bind", "configure_logging", "get_logger"]

_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]

structlog.configure(
    processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
    cache_logger_on_first_use=True,
)


def configure_logging(level: str = "INFO", *, json_output: bool = False) -> None:
    """Send Socialflow's log lines to stderr, as console lines or one JSON object per line.

    Args:
        level: Log level name for the ``socialflow`` logger tree.
        json_output: Render JSON (production) instead of console lines.
    """
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    handler = logging.StreamHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_SHARED,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger("socialflow")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Prefect puts a console handler on the root logger: propagating would print every line twice
    root.propagate = False


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structured logger; values bound with ``bind`` are merged into every line."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


def bind(**values: Any) -> None:
    """Bind values (``workspace_id``, ``flow_run_id``, ``node_id`` …) to the current context."""
    structlog.contextvars.bind_contextvars(**values)
