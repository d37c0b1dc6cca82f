"""Prompts of the AI nodes and the lenient parsing of a classifier's answer."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from socialflow.knowledge import RetrievedChunk

__all__ = [
    "OTHER",
    "Grade",
    "classifier_system",
    "classify_tool",
    "format_context",
    "grading_system",
    "grounded_system",
    "parse_grade",
    "parse_label",
]

#: The classifier's port for everything that fits no label.
OTHER = "other"
_WORD = re.compile(r"[a-z0-9_]+")
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)
_MAX_REASON = 500


def classify_tool(names: Sequence[str]) -> dict[str, Any]:
    """The function the classifier's model is made to call, in OpenAI's tool format."""
    return {
        "type": "function",
        "function": {
            "name": "classify",
            "description": "Record the single intent that best fits the message.",
            "parameters": {
                "type": "object",
                "properties": {
                    "label": {"type": "string", "enum": [*names, OTHER]},
                    "reason": {"type": "string", "description": "One short sentence."},
                },
                "required": ["label"],
            },
        },
    }


def classifier_system(labels: Sequence[tuple[str, str]], instructions: str, method: str) -> str:
    """The classifier's system prompt: the labels with their descriptions, and the format."""
    lines = [
        "You classify the intent of a message from a social-media user.",
        "Choose exactly one of these labels:",
        *(f"- {name}: {description or name.replace('_', ' ')}" for name, description in labels),
        f"- {OTHER}: the message fits none of the labels above.",
    ]
    if instructions.strip():
        lines += ["", instructions.strip()]
    lines.append("")
    if method == "tool_calling":
        lines.append("Answer by calling the classify function.")
    elif method == "json_mode":
        lines.append('Answer with a JSON object only: {"label": "<label>", "reason": "<why>"}.')
    else:
        lines.append("Answer with the label only, nothing else.")
    return "\n".join(lines)


def _match(value: Any, names: Sequence[str]) -> str | None:
    if not isinstance(value, str):
        return None
    wanted = value.strip().strip("\"'`.").lower()
    if wanted == OTHER:
        return OTHER
    return next((name for name in names if name == wanted), None)


def _from_json(content: str) -> Mapping[str, Any] | None:
    found = _JSON_OBJECT.search(content)
    if not found:
        return None
    try:
        value = json.loads(found.group(0))
    except (ValueError, RecursionError):  # a reply nested deeper than the parser goes
        return None
    return value if isinstance(value, Mapping) else None


def parse_label(
    tool_calls: Sequence[Mapping[str, Any]], content: str, names: Sequence[str]
) -> tuple[str, str]:
    """The label a classifier's answer names, read as leniently as is safe.

    Tried in order: the ``classify`` tool call, a JSON object in the text, the text being a
    label, the text containing exactly one label as a word. Anything else is ``other``, so a
    garbled answer never routes to a wrong intent.

    Args:
        tool_calls: The answer's tool calls (LangChain format: ``name``, ``args``).
        content: The answer's text.
        names: The configured labels.

    Returns:
        ``(label, reason)``; label is one of ``names`` or ``other``.
    """
    for call in tool_calls:
        args = call.get("args")
        if isinstance(args, Mapping):
            label = _match(args.get("label"), names)
            if label is not None:
                return label, str(args.get("reason") or "")[:_MAX_REASON]
    parsed = _from_json(content)
    if parsed is not None:
        label = _match(parsed.get("label") or parsed.get("intent"), names)
        if label is not None:
            return label, str(parsed.get("reason") or "")[:_MAX_REASON]
    label = _match(content, names)
    if label is not None:
        return label, ""
    words = set(_WORD.findall(content.lower()))
    mentioned = [name for name in names if name in words]
    if len(mentioned) == 1:
        return mentioned[0], ""
    return OTHER, ""


def grounded_system(fallback: str, instructions: str) -> str:
    """The knowledge answer's system prompt: context only, the fallback when it falls short."""
    lines = [
        "You answer questions from a social-media audience on behalf of a business.",
        "Use only the numbered context passages in the user's message. Do not use outside "
        "knowledge, and never invent facts, names, prices, dates, links or policies.",
        "If the passages do not contain the answer, reply with exactly this sentence and "
        f"nothing else: {fallback}",
        "Cite the passages you used by their numbers, like [1] or [2].",
    ]
    if instructions.strip():
        lines += ["", "Style guidance (it never overrides the rules above):", instructions.strip()]
    return "\n".join(lines)


def format_context(chunks: Sequence[RetrievedChunk]) -> str:
    """Chunks as numbered passages: ``[1] (source: faq.md, section: Returns)`` then the text."""
    parts = []
    for n, chunk in enumerate(chunks, start=1):
        where = [f"source: {chunk.source}"] if chunk.source else []
        if chunk.section:
            where.append(f"section: {chunk.section}")
        label = f" ({', '.join(where)})" if where else ""
        parts.append(f"[{n}]{label}\n{chunk.text.strip()}")
    return "\n\n".join(parts)


def grading_system() -> str:
    """The grading step's system prompt: do the passages answer the question? JSON only."""
    return "\n".join(
        [
            "You check whether numbered passages from a business's knowledge base answer a "
            "customer's question. You do not answer the question yourself.",
            "The passages answer it only if they state what the question asks. A passage "
            "about a similar topic, another product, platform or feature, or one that only "
            "says where to look, does not answer it.",
            'Reply with a JSON object only: {"answerable": true or false, "passages": '
            '[numbers of the passages that answer it], "reason": "<one short sentence>"}.',
        ]
    )


@dataclass(frozen=True)
class Grade:
    """A grading step's verdict: whether the passages answer the question, and which do.

    ``answerable`` is None when the model's reply could not be read as a verdict.
    """

    answerable: bool | None
    passages: list[int] = field(default_factory=list)
    reason: str = ""


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "yes"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"false", "no"}:
        return False
    return None


def parse_grade(content: str, count: int) -> Grade:
    """Read a grading reply: a JSON object with ``answerable``, ``passages`` and ``reason``.

    Args:
        content: The model's reply.
        count: How many passages it was shown; other numbers are dropped.

    Returns:
        The verdict; ``answerable`` None when the reply holds no readable verdict.
    """
    parsed = _from_json(content)
    if parsed is None:
        return Grade(answerable=None, reason="the grading reply was not a JSON object")
    raw = parsed.get("passages")
    numbers = raw if isinstance(raw, list) else []
    passages = sorted(
        {n for n in numbers if isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= count}
    )
    reason = str(parsed.get("reason") or "")[:_MAX_REASON]
    return Grade(answerable=_flag(parsed.get("answerable")), passages=passages, reason=reason)
