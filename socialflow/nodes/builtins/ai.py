"""AI nodes: LLM prompt, intent classifier, knowledge retrieve and grounded knowledge answer.

Chat models come from ``ctx.llm`` (built from a workspace credential) and knowledge from
``ctx.retriever``; every node that calls a model reports its token usage and cost.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, Field, model_validator

from socialflow.core.errors import UserError
from socialflow.nodes._base import BaseNode, NodeConfig, NodeContext, Port
from socialflow.nodes._template import Template
from socialflow.nodes.builtins._ai_prompts import (
    OTHER,
    Grade,
    classifier_system,
    classify_tool,
    format_context,
    grading_system,
    grounded_system,
    parse_grade,
    parse_label,
)

if TYPE_CHECKING:
    from socialflow.knowledge import ChatModel, RetrievedChunk
    from socialflow.nodes._base import ChatModelProvider, KnowledgeRetriever

__all__ = [
    "IntentClassifierNode",
    "KnowledgeAnswerNode",
    "KnowledgeRetrieveNode",
    "LLMPromptNode",
]

_CITATION = re.compile(r"\[(\d{1,3})\]")
_USAGE = Port(name="usage", type="ai.usage", description="Tokens used and their cost in USD.")
#: credential kinds a model-calling node may name in its ``credential`` field
_LLM_CREDENTIALS = ("openai", "anthropic", "ollama")


class _ModelConfig(NodeConfig):
    """Which chat model answers, and how."""

    provider: Literal["openai", "anthropic", "ollama"] = Field(
        default="openai",
        description="openai (any OpenAI-compatible endpoint), anthropic or ollama.",
    )
    credential: str | None = Field(
        default=None,
        max_length=100,
        description=(
            "Name of the workspace credential of the provider's kind; empty: the workspace's "
            "only one (Ollama: the server's own Ollama)."
        ),
    )
    model: str | None = Field(
        default=None,
        max_length=200,
        description="Model id, e.g. gpt-4o-mini; empty: the server's default for the provider.",
    )
    temperature: float | None = Field(
        default=None, ge=0, le=2, description="Sampling temperature; empty: the server default."
    )
    max_tokens: int | None = Field(
        default=None, ge=1, le=32_000, description="Longest answer in tokens; empty: default."
    )


class _RetrievalConfig(NodeConfig):
    """Which knowledge base is searched, and how much of it is kept."""

    knowledge_base_id: uuid.UUID = Field(description="The workspace's knowledge base to search.")
    top_k: int = Field(default=4, ge=1, le=50, description="At most this many chunks.")
    score_threshold: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description=(
            "Minimum cosine similarity (0-1) between the query and a chunk; weaker matches "
            "are left out."
        ),
    )
    filter: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        max_length=10,
        description='Metadata fields chunks must equal, e.g. {"filename": "faq.md"}.',
    )


async def _chat(ctx: NodeContext, cfg: _ModelConfig) -> ChatModel:
    llm: ChatModelProvider | None = ctx.llm
    if llm is None:
        msg = f"node {ctx.node_id!r}: chat models need a run of a workspace flow"
        raise UserError(msg, code="llm_unavailable")
    return await llm.get(
        cfg.provider,
        credential=cfg.credential or None,
        model=cfg.model or None,
        temperature=cfg.temperature,
        max_tokens=cfg.max_tokens,
    )


async def _retrieve(ctx: NodeContext, cfg: _RetrievalConfig, query: str) -> list[RetrievedChunk]:
    retriever = _retriever(ctx)
    if not query.strip():
        msg = f"node {ctx.node_id!r} field 'query': the query rendered empty"
        raise UserError(msg, code="empty_query", details={"field": "query"})
    return await retriever.retrieve(
        cfg.knowledge_base_id,
        query,
        k=cfg.top_k,
        score_threshold=cfg.score_threshold or 0.0,
        filter=cfg.filter or None,
    )


def _messages(system: str, user: str) -> list[Any]:
    from langchain_core.messages import HumanMessage, SystemMessage

    return [*([SystemMessage(content=system)] if system.strip() else []), HumanMessage(user)]


def _text(content: Any) -> str:
    """The text of a message's content (a string, or Anthropic-style content blocks)."""
    if isinstance(content, str):
        return content
    parts = [block.get("text", "") if isinstance(block, dict) else str(block) for block in content]
    return "".join(parts)


class LLMPromptNode(BaseNode):
    """Asks a chat model: system and user prompts from templates, answer as text."""

    kind = "ai.llm_prompt"
    title = "LLM prompt"
    category = "ai"
    icon = "sparkles"
    credentials = _LLM_CREDENTIALS
    example_config: ClassVar[dict[str, Any]] = {
        "prompt": "Write a short, friendly reply to: {{ trigger.text }}"
    }
    inputs = (Port(name="in", description="Optional: data the templates can use as input."),)
    outputs = (Port(name="text", type="text", description="The model's answer."), _USAGE)

    class Config(_ModelConfig):
        system: Template = Field(
            default="", max_length=20_000, description="System prompt; templates allowed."
        )
        prompt: Template = Field(
            min_length=1, max_length=50_000, description="User prompt; templates allowed."
        )

    config: Config

    async def run(self, ctx: NodeContext, *args: Any, **inputs: Any) -> dict[str, Any]:
        cfg = self.config
        system = ctx.render_text(cfg.system, field_name="system")
        prompt = ctx.render_text(cfg.prompt, field_name="prompt")
        chat = await _chat(ctx, cfg)
        answer = await chat.invoke(_messages(system, prompt), stream=True)
        return {"text": _text(answer.content), "usage": chat.usage(answer).model_dump()}


class IntentLabel(BaseModel):
    """One intent the classifier may choose; its name is also an output port."""

    name: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,39}$",
        description="Label and output port name: lower-case letters, digits and _.",
    )
    description: str = Field(
        default="", max_length=500, description="What messages of this intent look like."
    )


class IntentClassifierNode(BaseNode):
    """Sorts a text into one of the given intents and fires that intent's port, or "other"."""

    kind = "ai.intent_classifier"
    title = "Intent classifier"
    category = "ai"
    icon = "signpost"
    credentials = _LLM_CREDENTIALS
    example_config: ClassVar[dict[str, Any]] = {
        "labels": [
            {"name": "question", "description": "Asks about products, prices or opening hours."},
            {"name": "complaint", "description": "Reports a problem or is unhappy."},
        ]
    }
    inputs = (Port(name="in", description="Optional: passed on through the port that fires."),)
    outputs = (Port(name=OTHER, description="Fires when no label fits or the answer is unclear."),)

    class Config(_ModelConfig):
        text: Template = Field(
            default="{{ trigger.text }}",
            min_length=1,
            max_length=20_000,
            description="The text to classify; templates allowed.",
        )
        labels: list[IntentLabel] = Field(
            min_length=1, max_length=20, description="The intents, each with a description."
        )
        instructions: str = Field(
            default="", max_length=5000, description="Extra guidance for the classifier."
        )
        method: Literal["tool_calling", "json_mode", "prompt"] = Field(
            default="tool_calling",
            description=(
                "How the model answers: tool_calling (a forced function call), json_mode (a "
                "JSON object) or prompt (the label as plain text). Every answer is also parsed "
                "leniently, so a model that ignores the format still routes."
            ),
        )
        temperature: float | None = Field(
            default=0.0, ge=0, le=2, description="Sampling temperature; 0 is most repeatable."
        )

        @model_validator(mode="after")
        def _unique_labels(self) -> IntentClassifierNode.Config:
            names = [label.name for label in self.labels]
            if len(set(names)) != len(names) or OTHER in names:
                msg = f"label names must be unique and not {OTHER!r} (that port always exists)"
                raise ValueError(msg)
            return self

    config: Config

    @classmethod
    def output_ports(cls, config: NodeConfig | None = None) -> tuple[Port, ...]:
        if not isinstance(config, cls.Config):
            return cls.outputs
        labels = (Port(name=label.name, description=label.description) for label in config.labels)
        return (*labels, *cls.outputs)

    async def run(self, ctx: NodeContext, *args: Any, **inputs: Any) -> dict[str, Any]:
        cfg = self.config
        text = ctx.render_text(cfg.text, field_name="text")
        names = [label.name for label in cfg.labels]
        system = classifier_system(
            [(label.name, label.description) for label in cfg.labels],
            cfg.instructions,
            cfg.method,
        )
        chat = await _chat(ctx, cfg)
        if cfg.method == "tool_calling":
            answer = await chat.invoke(
                _messages(system, text), tools=[classify_tool(names)], tool_choice="classify"
            )
        else:
            answer = await chat.invoke(_messages(system, text), json_mode=cfg.method == "json_mode")
        label, reason = parse_label(answer.tool_calls, _text(answer.content), names)
        ctx.logger.info("intent classified", label=label)
        value = {
            "label": label,
            "reason": reason,
            "text": text,
            "input": inputs.get("in"),
            "usage": chat.usage(answer).model_dump(),
        }
        return {label: value}


class KnowledgeRetrieveNode(BaseNode):
    """Finds the chunks of a knowledge base most relevant to a query."""

    kind = "ai.knowledge_retrieve"
    title = "Knowledge retrieve"
    category = "ai"
    icon = "library"
    example_config: ClassVar[dict[str, Any]] = {
        "knowledge_base_id": "00000000-0000-0000-0000-000000000000"
    }
    inputs = (Port(name="in", description="Optional: data the query template can use."),)
    outputs = (
        Port(
            name="chunks",
            type="knowledge.chunks",
            description="Chunks found, best first: id, text, score, source, metadata.",
        ),
        Port(name="context", type="text", description="The chunks as numbered text for a prompt."),
    )

    class Config(_RetrievalConfig):
        query: Template = Field(
            default="{{ trigger.text }}",
            min_length=1,
            max_length=4000,
            description="What to search for; templates allowed.",
        )

    config: Config

    async def run(self, ctx: NodeContext, *args: Any, **inputs: Any) -> dict[str, Any]:
        query = ctx.render_text(self.config.query, field_name="query")
        chunks = await _retrieve(ctx, self.config, query)
        return {
            "chunks": [chunk.model_dump(mode="json") for chunk in chunks],
            "context": format_context(chunks),
        }


class KnowledgeAnswerNode(BaseNode):
    """Answers a question from a knowledge base only, and says it does not know otherwise."""

    kind = "ai.knowledge_answer"
    title = "Knowledge answer"
    category = "ai"
    icon = "book-open-check"
    credentials = _LLM_CREDENTIALS
    example_config: ClassVar[dict[str, Any]] = {
        "knowledge_base_id": "00000000-0000-0000-0000-000000000000"
    }
    inputs = (Port(name="in", description="Optional: data the templates can use."),)
    outputs = (
        Port(name="answer", type="text", description="The grounded answer, or the fallback."),
        Port(
            name="sources",
            type="knowledge.sources",
            description="Chunks given to the model: n, id, title, source, section, score, cited.",
        ),
        Port(
            name="citations",
            type="knowledge.citations",
            description="The passages the answer rests on: n, id, title, source, section.",
        ),
        Port(
            name="decision",
            type="knowledge.decision",
            description=(
                "Whether it answered and why not: answered, reason, threshold, top_score, "
                "and the grading verdict with its usage when grading is on."
            ),
        ),
        _USAGE,
    )

    class Config(_ModelConfig, _RetrievalConfig):
        question: Template = Field(
            default="{{ trigger.text }}",
            min_length=1,
            max_length=4000,
            description="The question, also the retrieval query; templates allowed.",
        )
        score_threshold: float | None = Field(  # type: ignore[assignment]
            default=None,
            ge=0,
            le=1,
            description=(
                "Minimum cosine similarity (0-1) between the question and a chunk; when no "
                "chunk reaches it, the fallback is said without asking the model. Empty: the "
                "threshold calibrated for the knowledge base's embedder."
            ),
        )
        grade: bool = Field(
            default=False,
            description=(
                "Before answering, ask the model whether the passages answer the question (a "
                "short JSON verdict, one more small call); when it says they do not, say the "
                "fallback."
            ),
        )
        instructions: str = Field(
            default="",
            max_length=5000,
            description="Extra guidance (tone, length, language); cannot lift the grounding.",
        )
        fallback_answer: Template = Field(
            default="Sorry, I don't know the answer to that.",
            min_length=1,
            max_length=1000,
            description="Said when the knowledge base holds nothing relevant; templates allowed.",
        )

    config: Config

    async def run(self, ctx: NodeContext, *args: Any, **inputs: Any) -> dict[str, Any]:
        cfg = self.config
        question = ctx.render_text(cfg.question, field_name="question")
        fallback = ctx.render_text(cfg.fallback_answer, field_name="fallback_answer")
        threshold = cfg.score_threshold
        if threshold is None:
            threshold = await _retriever(ctx).refusal_threshold(cfg.knowledge_base_id)
        chunks = await _retrieve(
            ctx, cfg.model_copy(update={"score_threshold": threshold}), question
        )
        decision: dict[str, Any] = {
            "answered": False,
            "reason": "below_threshold",
            "threshold": threshold,
            "top_score": max((chunk.score for chunk in chunks), default=None),
            "grade": None,
        }
        if not chunks:
            # nothing relevant: answer without asking a model, so nothing can be invented
            ctx.logger.info("knowledge answer: nothing relevant found", threshold=threshold)
            usage = {"provider": cfg.provider, "model": cfg.model, "calls": 0}
            return _refusal(fallback, [], decision, _zero_usage(usage))
        chat = await _chat(ctx, cfg)
        context = format_context(chunks)
        replies = []
        grade: Grade | None = None
        if cfg.grade:
            grade, reply = await _grade(chat, chunks, question)
            replies.append(reply)
            decision["grade"] = {**asdict(grade), "usage": chat.usage(reply).model_dump()}
            if grade.answerable is False:
                ctx.logger.info("knowledge answer: graded unanswerable", reason=grade.reason)
                decision["reason"] = "graded_unanswerable"
                usage = chat.usage(*replies).model_dump()
                return _refusal(fallback, _sources(chunks, set()), decision, usage)
        system = grounded_system(fallback, cfg.instructions)
        user = f"Context:\n{context}\n\nQuestion: {question}"
        answer = await chat.invoke(_messages(system, user))
        replies.append(answer)
        text = _text(answer.content).strip() or fallback
        cited = {int(n) for n in _CITATION.findall(text)} & set(range(1, len(chunks) + 1))
        if text == fallback.strip():
            decision["reason"] = "model_fallback"
            cited = set()
        else:
            decision.update(answered=True, reason="answered")
            if not cited and grade is not None:
                cited = set(grade.passages)  # the answer named none: what the grader found
        sources = _sources(chunks, cited)
        return {
            "answer": text,
            "sources": sources,
            "citations": [_citation(source) for source in sources if source["cited"]],
            "decision": decision,
            "usage": chat.usage(*replies).model_dump(),
        }


def _retriever(ctx: NodeContext) -> KnowledgeRetriever:
    retriever: KnowledgeRetriever | None = ctx.retriever
    if retriever is None:
        msg = f"node {ctx.node_id!r}: knowledge bases need a run of a workspace flow"
        raise UserError(msg, code="knowledge_base_unavailable")
    return retriever


async def _grade(chat: ChatModel, chunks: list[RetrievedChunk], question: str) -> tuple[Grade, Any]:
    """Ask the model whether the passages answer the question; its verdict and reply."""
    user = f"Passages:\n{format_context(chunks)}\n\nQuestion: {question}"
    reply = await chat.invoke(_messages(grading_system(), user), json_mode=True)
    return parse_grade(_text(reply.content), len(chunks)), reply


def _sources(chunks: list[RetrievedChunk], cited: set[int]) -> list[dict[str, Any]]:
    return [
        {
            "n": n,
            "id": chunk.id,
            "title": chunk.title,
            "source": chunk.source,
            "section": chunk.section,
            "score": chunk.score,
            "cited": n in cited,
            "text": chunk.text,
        }
        for n, chunk in enumerate(chunks, start=1)
    ]


def _citation(source: dict[str, Any]) -> dict[str, Any]:
    return {key: source[key] for key in ("n", "id", "title", "source", "section")}


def _refusal(
    fallback: str, sources: list[dict[str, Any]], decision: dict[str, Any], usage: dict[str, Any]
) -> dict[str, Any]:
    return {
        "answer": fallback,
        "sources": sources,
        "citations": [],
        "decision": decision,
        "usage": usage,
    }


def _zero_usage(fields: dict[str, Any]) -> dict[str, Any]:
    from socialflow.knowledge import Usage

    return Usage.model_validate(fields).model_dump()
