"""Structured logging for every process: structlog rendered through the standard library.

structlog is configured on import, so every ``get_logger`` line reaches the standard
``logging`` tree (and pytest's capture); ``configure_logging`` picks the output format.

What a line costs is bounded whatever it carries: tracebacks are plain text without local
variables (structlog's default, Rich with ``show_locals``, pretty-printed every local of every
frame: a 900-level payload held by one took a worker seven minutes), and values are cut to a
few thousand characters (``bound_values``), so a huge or deeply nested payload logged with an
error costs about what a small one does. JSON lines carry the traceback as ``exception``.
"""

from __future__ import annotations

import logging
import reprlib
import sys
import traceback
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
from structlog.typing import ExcInfo

__all__ = ["MAX_VALUE_CHARS", "bind", "bound_values", "configure_logging", "get_logger"]

#: longest rendering of one logged value, and of a traceback
MAX_VALUE_CHARS = 4_000
MAX_TRACEBACK_CHARS = 20_000
# containers are logged as they are while small and shallow; larger ones as a bounded repr
_MAX_ITEMS = 200
_MAX_LEVELS = 8
_REPR = reprlib.Repr()
_REPR.maxlevel = 4
_REPR.maxdict = _REPR.maxlist = _REPR.maxtuple = _REPR.maxset = 10
_REPR.maxstring = _REPR.maxother = 200
_SCALARS = (str, int, float, bool, type(None))

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
    processors: list[Any] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if json_output:
        processors += [_exception_as_text, bound_values, structlog.processors.JSONRenderer()]
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=_plain_traceback
        )
        processors += [bound_values, renderer]
    handler = logging.StreamHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(foreign_pre_chain=_SHARED, processors=processors)
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


def bound_values(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: every value of a line rendered in bounded time and size.

    Strings longer than ``MAX_VALUE_CHARS`` are cut; containers that are small and shallow are
    kept (JSON lines keep their structure), larger ones become a bounded ``repr``; other
    objects their ``repr``, cut. ``exc_info`` is left to the renderer's traceback formatter.
    """
    for key, value in event_dict.items():
        if key == "exc_info" or isinstance(value, bool | int | float | type(None)):
            continue
        if isinstance(value, str):
            event_dict[key] = _clip(value, MAX_VALUE_CHARS)
        elif isinstance(value, dict | list | tuple) and _small(value):
            continue
        else:
            event_dict[key] = _clip(_bounded_repr(value), MAX_VALUE_CHARS)
    return event_dict


def _small(value: Any) -> bool:
    """Whether ``value`` holds at most ``_MAX_ITEMS`` items over ``_MAX_LEVELS`` levels, all
    of them plain (looks at no more than that many)."""
    budget = _MAX_ITEMS
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if level > _MAX_LEVELS:
            return False
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            budget -= 1
            if budget < 0:
                return False
            if isinstance(child, dict | list | tuple):
                stack.append((child, level + 1))
            elif isinstance(child, str):
                if len(child) > MAX_VALUE_CHARS:
                    return False
            elif not isinstance(child, _SCALARS):
                return False
    return True


def _bounded_repr(value: Any) -> str:
    try:
        return _REPR.repr(value)
    except Exception as exc:  # a broken __repr__, or one nested too deep to recurse
        return f"<{type(value).__name__}: unrepresentable ({type(exc).__name__})>"


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    keep = limit // 2
    return f"{text[:keep]} … [{len(text) - 2 * keep} characters cut] … {text[-keep:]}"


def _traceback_text(exc_info: ExcInfo) -> str:
    """The plain traceback (no locals), cut in the middle when very long."""
    try:
        text = "".join(traceback.format_exception(*exc_info))
    except Exception as exc:  # an exception whose __str__ fails or recurses
        text = f"{exc_info[0].__name__ if exc_info[0] else 'exception'} (traceback failed: {exc!r})"
    return _clip(text.rstrip("\n"), MAX_TRACEBACK_CHARS)


def _plain_traceback(sio: TextIO, exc_info: ExcInfo) -> None:
    sio.write("\n" + _traceback_text(exc_info))


def _exception_as_text(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """JSON lines: ``exc_info`` becomes the bounded plain traceback under ``exception``."""
    exc_info = event_dict.pop("exc_info", None)
    if not exc_info:
        return event_dict
    if isinstance(exc_info, BaseException):
        info: Any = (type(exc_info), exc_info, exc_info.__traceback__)
    elif isinstance(exc_info, tuple):
        info = exc_info
    else:
        info = sys.exc_info()
    if info[0] is not None:
        event_dict["exception"] = _traceback_text(info)
    return event_dict
