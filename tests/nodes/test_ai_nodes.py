"""AI nodes against a scripted OpenAI-compatible server, called directly and run by the engine."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from socialflow.core.credentials import Credential, key_wrapper, parse_secret, seal_credential
from socialflow.core.errors import UserError
from socialflow.core.settings import Settings
from socialflow.knowledge import (
    CredentialChatModels,
    KnowledgeBase,
    MiniLMEmbeddings,
    WorkspaceRetriever,
    open_store,
    refusal_threshold,
)
from socialflow.nodes import BaseNode
from socialflow.nodes.builtins import BUILTIN_NODES
from socialflow.nodes.builtins.ai import (
    IntentClassifierNode,
    KnowledgeAnswerNode,
    KnowledgeRetrieveNode,
    LLMPromptNode,
)
from socialflow.orchestration import (
    EngineRuntime,
    GraphSpec,
    RunMeta,
    get_execution,
    start_graph_run,
)
from tests.fixtures.context import make_context
from tests.fixtures.llm_server import ScriptedLLM, allowing_loopback, serve_llm

FAQ = [
    ("Returns are accepted within 30 days with the receipt; refunds take 5 days.", "returns.md"),
    ("Our shop opens at 9 am and closes at 6 pm, Monday to Saturday.", "hours.md"),
    ("Shipping to Portugal and Spain is free for orders above 50 euros.", "shipping.md"),
]
LABELS = [
    {"name": "question", "description": "Asks about products, prices, shipping or returns."},
    {"name": "complaint", "description": "Reports a problem or is unhappy."},
]


class StaticCredentials:
    """A credential resolver over fixed fields (the engine's one reads the database)."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    async def get(self, kind: str, name: str | None = None) -> dict[str, Any]:
        return self.fields


@pytest.fixture(scope="session")
def minilm() -> MiniLMEmbeddings:
    return MiniLMEmbeddings.shared()


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with serve_llm() as server:
        yield server


def ai_context(server: ScriptedLLM, *, retriever: Any = None, **kwargs: Any) -> Any:
    kwargs["settings"] = allowing_loopback(kwargs.get("settings") or Settings())
    ctx = make_context(**kwargs)
    fields = {"api_key": "sk-test-key", "base_url": server.url}
    ctx.llm = CredentialChatModels(StaticCredentials(fields), ctx.settings)
    ctx.retriever = retriever
    return ctx


def node(cls: type[BaseNode], config: dict[str, Any]) -> BaseNode:
    return cls(cls.Config.model_validate(config))


def _workspace(workspace_id: uuid.UUID) -> Any:
    from socialflow.api.workspaces.models import Workspace

    return Workspace(id=workspace_id, name=f"w-{workspace_id.hex[:6]}")


async def knowledge_base(db: Any, settings: Settings, workspace: uuid.UUID, minilm: Any) -> Any:
    """A workspace with a MiniLM knowledge base holding the FAQ."""
    base = KnowledgeBase(
        workspace_id=workspace,
        name="FAQ",
        embedder_provider="minilm",
        embedder_model="all-MiniLM-L6-v2",
        embedder_dimension=384,
    )
    async with db.session() as session:
        session.add(_workspace(workspace))
        await session.flush()
        session.add(base)
    store = open_store(settings, namespace=str(base.id), embeddings=minilm)
    store.add_texts(
        [t for t, _ in FAQ], [{"filename": n} for _, n in FAQ], ids=[f"{n}#0" for _, n in FAQ]
    )
    return base


# -- LLM prompt ------------------------------------------------------------------------------


async def test_llm_prompt_renders_templates_and_reports_usage_and_cost(llm: ScriptedLLM) -> None:
    llm.script("comment by ana", reply="Thanks so much, Ana!")
    prompt = node(
        LLMPromptNode,
        {
            "system": "You write replies for {{ trigger.brand }}.",
            "prompt": "Reply to this comment by {{ trigger.username }}: {{ trigger.text }}",
            "model": "gpt-4o-mini",
        },
    )
    trigger = {"brand": "Mug Co", "username": "ana", "text": "love it"}
    result = await prompt.run(ai_context(llm, trigger=trigger))
    assert result["text"] == "Thanks so much, Ana!"
    (sent,) = llm.chat_requests
    assert sent["messages"] == [
        {"role": "system", "content": "You write replies for Mug Co."},
        {"role": "user", "content": "Reply to this comment by ana: love it"},
    ]
    usage = result["usage"]
    assert usage["calls"] == 1 and usage["model"] == "gpt-4o-mini"
    assert usage["input_tokens"] > 0 and usage["output_tokens"] == 4
    expected = (usage["input_tokens"] * 0.15 + usage["output_tokens"] * 0.60) / 1_000_000
    assert usage["cost_usd"] == pytest.approx(expected)


async def test_ai_nodes_need_a_workspace_run() -> None:
    prompt = node(LLMPromptNode, LLMPromptNode.example_config)
    with pytest.raises(UserError) as caught:
        await prompt.run(make_context(trigger={"text": "hi"}))
    assert caught.value.code == "llm_unavailable"
    retrieve = node(KnowledgeRetrieveNode, KnowledgeRetrieveNode.example_config)
    with pytest.raises(UserError) as caught:
        await retrieve.run(make_context(trigger={"text": "hi"}))
    assert caught.value.code == "knowledge_base_unavailable"


# -- intent classifier -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "behaviour", "port"),
    [
        ("tool_calling", {"tool_call": {"arguments": {"label": "question"}}}, "question"),
        ("tool_calling", {"tool_call": {"arguments": {"label": "complaint"}}}, "complaint"),
        ("tool_calling", {"tool_call": {"arguments": {"label": "sales_lead"}}}, "other"),
        ("tool_calling", {"tool_call": {"raw_arguments": '{"label": "quest'}}, "other"),
        ("tool_calling", {"reply": '{"label": "complaint"}'}, "complaint"),
        ("json_mode", {"json": {"label": "question", "reason": "asks"}}, "question"),
        ("json_mode", {"reply": "not json at all"}, "other"),
        ("prompt", {"reply": "Complaint."}, "complaint"),
        ("prompt", {"reply": "I think this is a question."}, "question"),
        ("prompt", {"reply": "a question or a complaint"}, "other"),
        ("prompt", {"reply": "¯\\_(ツ)_/¯"}, "other"),
    ],
)
async def test_classifier_routes_to_the_scripted_label(
    llm: ScriptedLLM, method: str, behaviour: dict[str, Any], port: str
) -> None:
    llm.script("where is my order", **behaviour)
    classifier = node(IntentClassifierNode, {"labels": LABELS, "method": method})
    config = classifier.config
    result = await classifier.run(
        ai_context(llm, trigger={"text": "Where is my order?"}), **{"in": {"id": 7}}
    )
    assert set(result) == {port}
    assert port in {p.name for p in IntentClassifierNode.output_ports(config)}
    value = result[port]
    assert value["label"] == port and value["text"] == "Where is my order?"
    assert value["input"] == {"id": 7}
    assert value["usage"]["calls"] == 1 and value["usage"]["input_tokens"] > 0
    (sent,) = llm.chat_requests
    system = sent["messages"][0]["content"]
    assert "- question: Asks about products" in system and "- other:" in system
    if method == "tool_calling":
        assert sent["tool_choice"]["function"]["name"] == "classify"
        enum = sent["tools"][0]["function"]["parameters"]["properties"]["label"]["enum"]
        assert enum == ["question", "complaint", "other"]
    if method == "json_mode":
        assert sent["response_format"] == {"type": "json_object"}


def test_classifier_labels_are_ports_and_other_is_reserved() -> None:
    config = IntentClassifierNode.Config.model_validate({"labels": LABELS})
    names = [p.name for p in IntentClassifierNode.output_ports(config)]
    assert names == ["question", "complaint", "other"]
    with pytest.raises(ValueError, match="not 'other'"):
        IntentClassifierNode.Config.model_validate({"labels": [{"name": "other"}]})
    with pytest.raises(ValueError, match="unique"):
        IntentClassifierNode.Config.model_validate({"labels": [{"name": "a"}, {"name": "a"}]})


# -- knowledge retrieve and answer --------------------------------------------------------------


@pytest.fixture
def kb_settings(tmp_path: Path) -> Settings:
    return Settings(knowledge={"store_path": str(tmp_path / "stores")})


async def test_retrieve_outputs_chunks_and_context(
    db: Any, kb_settings: Settings, minilm: MiniLMEmbeddings, llm: ScriptedLLM
) -> None:
    workspace = uuid.uuid4()
    base = await knowledge_base(db, kb_settings, workspace, minilm)
    retriever = WorkspaceRetriever(db, kb_settings, workspace)
    retrieve = node(
        KnowledgeRetrieveNode,
        {"knowledge_base_id": str(base.id), "query": "{{ trigger.text }}", "top_k": 2},
    )
    ctx = ai_context(llm, retriever=retriever, trigger={"text": "Do you ship to Spain?"})
    result = await retrieve.run(ctx)
    assert result["chunks"][0]["source"] == "shipping.md"
    assert result["context"].startswith("[1] (source: shipping.md)\nShipping to Portugal")
    assert llm.requests == [], "retrieval alone calls no model"


async def test_knowledge_answer_is_grounded_and_cites_its_sources(
    db: Any, kb_settings: Settings, minilm: MiniLMEmbeddings, llm: ScriptedLLM
) -> None:
    workspace = uuid.uuid4()
    base = await knowledge_base(db, kb_settings, workspace, minilm)
    llm.script(
        "refunds take 5 days",
        reply="You can return it within 30 days with the receipt [1].",
    )
    answer = node(
        KnowledgeAnswerNode,
        {"knowledge_base_id": str(base.id), "top_k": 2, "instructions": "Be warm."},
    )
    ctx = ai_context(
        llm,
        retriever=WorkspaceRetriever(db, kb_settings, workspace),
        trigger={"text": "How do returns and refunds work?"},
    )
    result = await answer.run(ctx)
    assert result["answer"] == "You can return it within 30 days with the receipt [1]."
    first = result["sources"][0]
    assert (first["n"], first["source"], first["cited"]) == (1, "returns.md", True)
    assert all(not s["cited"] for s in result["sources"][1:])
    assert result["usage"]["calls"] == 1 and result["usage"]["cost_usd"] > 0
    (sent,) = llm.chat_requests
    system, user = sent["messages"][0]["content"], sent["messages"][1]["content"]
    assert "Use only the numbered context passages" in system
    assert "never invent" in system
    assert "Sorry, I don't know the answer to that." in system
    assert "Be warm." in system
    assert "[1] (source: returns.md)" in user
    assert user.endswith("Question: How do returns and refunds work?")


async def test_knowledge_answer_without_relevant_chunks_does_not_call_the_model(
    db: Any, kb_settings: Settings, minilm: MiniLMEmbeddings, llm: ScriptedLLM
) -> None:
    workspace = uuid.uuid4()
    base = await knowledge_base(db, kb_settings, workspace, minilm)
    llm.script(reply="The 1998 world cup was won by France.")  # what a model might invent
    answer = node(
        KnowledgeAnswerNode,
        {
            "knowledge_base_id": str(base.id),
            "fallback_answer": "I don't know that one, {{ trigger.username }}.",
        },
    )
    ctx = ai_context(
        llm,
        retriever=WorkspaceRetriever(db, kb_settings, workspace),
        trigger={"text": "Who won the football world cup in 1998?", "username": "ana"},
    )
    result = await answer.run(ctx)
    assert result == {
        "answer": "I don't know that one, ana.",
        "sources": [],
        "citations": [],
        "decision": {
            "answered": False,
            "reason": "below_threshold",
            "threshold": refusal_threshold("minilm", "all-MiniLM-L6-v2"),
            "top_score": None,
            "grade": None,
        },
        "usage": result["usage"],
    }
    assert result["usage"]["calls"] == 0 and result["usage"]["cost_usd"] == 0
    assert llm.requests == [], "nothing relevant: the model is not asked at all"


async def test_every_ai_kind_runs_its_example_and_returns_declared_ports(
    db: Any, kb_settings: Settings, minilm: MiniLMEmbeddings, llm: ScriptedLLM
) -> None:
    workspace = uuid.uuid4()
    base = await knowledge_base(db, kb_settings, workspace, minilm)
    retriever = WorkspaceRetriever(db, kb_settings, workspace)
    kinds = [n for n in BUILTIN_NODES if n.category == "ai"]
    assert {n.kind for n in kinds} >= {
        "ai.llm_prompt",
        "ai.intent_classifier",
        "ai.knowledge_retrieve",
        "ai.knowledge_answer",
    }
    for cls in kinds:
        example = dict(cls.example_config)
        if "knowledge_base_id" in example:
            example["knowledge_base_id"] = str(base.id)
        config = cls.Config.model_validate(example)
        ctx = ai_context(llm, retriever=retriever, trigger={"text": "When do you open?"})
        result = await cls(config).run(ctx, **{"in": {"text": "When do you open?"}})
        assert result, cls.kind
        assert set(result) <= {p.name for p in cls.output_ports(config)}, cls.kind


# -- through the engine: retries on 429, no retry on 401 ------------------------------------------


async def _credential(
    runtime: EngineRuntime, workspace: uuid.UUID, name: str, **secret: Any
) -> None:
    runtime.settings = allowing_loopback(runtime.settings)  # the scripted server's host
    async with runtime.db.session() as session:
        session.add(_workspace(workspace))
        await session.flush()
        row = Credential(workspace_id=workspace, name=name, kind="openai")
        seal_credential(row, parse_secret("openai", secret), key_wrapper(runtime.settings))
        session.add(row)


def _prompt_graph(credential: str) -> GraphSpec:
    return GraphSpec.model_validate(
        {
            "nodes": [
                {"id": "t", "kind": "trigger.manual"},
                {
                    "id": "ask",
                    "kind": "ai.llm_prompt",
                    "label": "Ask",
                    "config": {
                        "prompt": "Say hello to {{ trigger.name }}",
                        "credential": credential,
                    },
                    "settings": {"retries": 2, "retry_delay_seconds": 0},
                },
            ],
            "edges": [{"source": "t", "source_port": "event", "target": "ask"}],
        }
    )


async def _run(runtime: EngineRuntime, spec: GraphSpec, workspace: uuid.UUID) -> Any:
    meta = RunMeta(flow_name="ai-test", workspace_id=workspace)
    await start_graph_run(spec, {"name": "Ana"}, meta)
    async with runtime.db.session() as session:
        return await get_execution(session, meta.execution_id)


async def test_a_rate_limit_is_retried_by_the_engine(
    runtime: EngineRuntime, llm: ScriptedLLM
) -> None:
    workspace = uuid.uuid4()
    await _credential(runtime, workspace, "Scripted", api_key="sk-test-key", base_url=llm.url)
    llm.script(status=429, times=1)
    llm.script("hello to ana", reply="Hello, Ana!")
    execution = await _run(runtime, _prompt_graph("Scripted"), workspace)
    assert execution.status == "completed", execution.error
    ask = execution.node("ask")
    assert ask.attempts == 2
    assert ask.output["text"] == "Hello, Ana!"
    assert ask.output["usage"]["calls"] == 1
    assert len(llm.chat_requests) == 2


async def test_a_refused_key_fails_the_node_once_naming_the_credential(
    runtime: EngineRuntime, llm: ScriptedLLM
) -> None:
    workspace = uuid.uuid4()
    await _credential(runtime, workspace, "OpenAI prod", api_key="sk-revoked", base_url=llm.url)
    execution = await _run(runtime, _prompt_graph("OpenAI prod"), workspace)
    assert execution.status == "failed"
    ask = execution.node("ask")
    assert ask.error_code == "llm_auth_failed"
    assert "credential 'OpenAI prod' (openai)" in ask.error
    assert ask.attempts == 1, "a user error is not retried"
    assert len(llm.chat_requests) == 1
