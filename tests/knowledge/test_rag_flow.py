"""Comment → classify intent → (question) knowledge answer → reply, run by the engine in sandbox."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from socialflow.core.credentials import Credential, key_wrapper, parse_secret, seal_credential
from socialflow.knowledge import KnowledgeBase, MiniLMEmbeddings, open_store
from socialflow.orchestration import (
    EngineRuntime,
    ExecutionRead,
    GraphSpec,
    RunMeta,
    get_execution,
    start_graph_run,
)
from socialflow.testing.graph_api_emulator import GraphEmulator
from tests.fixtures.graph_emulator import (  # noqa: F401 - fixture
    ACCOUNT,
    connect_account,
    graph_emulator,
    ledger,
    use_emulator,
)
from tests.fixtures.llm_server import ScriptedLLM, allowing_loopback, serve_llm

FAQ = [
    ("Returns are accepted within 30 days with the receipt; refunds take 5 days.", "returns.md"),
    ("Our shop opens at 9 am and closes at 6 pm, Monday to Saturday.", "hours.md"),
    ("Shipping to Portugal and Spain is free for orders above 50 euros.", "shipping.md"),
]
GROUNDED = "Shipping to Spain is free for orders above 50 euros [1]."


def rag_graph(knowledge_base_id: uuid.UUID) -> GraphSpec:
    return GraphSpec.model_validate(
        {
            "nodes": [
                {"id": "comment", "kind": "instagram.comment", "label": "Comment"},
                {
                    "id": "intent",
                    "kind": "ai.intent_classifier",
                    "label": "Intent",
                    "config": {
                        "credential": "Scripted",
                        "labels": [
                            {"name": "question", "description": "Asks something."},
                            {"name": "complaint", "description": "Is unhappy."},
                        ],
                    },
                },
                {
                    "id": "answer",
                    "kind": "ai.knowledge_answer",
                    "label": "Answer",
                    "config": {
                        "credential": "Scripted",
                        "knowledge_base_id": str(knowledge_base_id),
                        "question": "{{ nodes.intent.question.text }}",
                    },
                },
                {
                    "id": "reply",
                    "kind": "instagram.reply_comment",
                    "label": "Reply",
                    "config": {"message": "{{ nodes.answer.answer }}"},
                },
            ],
            "edges": [
                {"source": "comment", "source_port": "event", "target": "intent"},
                {"source": "intent", "source_port": "question", "target": "answer"},
                {"source": "answer", "source_port": "answer", "target": "reply"},
            ],
        }
    )


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with serve_llm() as server:
        yield server


async def _prepare(
    runtime: EngineRuntime, emulator: GraphEmulator, llm: ScriptedLLM, tmp_path: Path
) -> tuple[Any, KnowledgeBase]:
    use_emulator(runtime, emulator)
    knowledge = runtime.settings.knowledge.model_copy(update={"store_path": tmp_path / "stores"})
    runtime.settings = allowing_loopback(
        runtime.settings.model_copy(update={"knowledge": knowledge})
    )
    account = await connect_account(runtime, mode="sandbox")
    base = KnowledgeBase(
        workspace_id=account.workspace_id,
        name="FAQ",
        embedder_provider="minilm",
        embedder_model="all-MiniLM-L6-v2",
        embedder_dimension=384,
    )
    async with runtime.db.session() as session:
        row = Credential(workspace_id=account.workspace_id, name="Scripted", kind="openai")
        secret = parse_secret("openai", {"api_key": "sk-test-key", "base_url": llm.url})
        seal_credential(row, secret, key_wrapper(runtime.settings))
        session.add_all([row, base])
    store = open_store(
        runtime.settings, namespace=str(base.id), embeddings=MiniLMEmbeddings.shared()
    )
    store.add_texts(
        [t for t, _ in FAQ], [{"filename": n} for _, n in FAQ], ids=[f"{n}#0" for _, n in FAQ]
    )
    return account, base


def comment(emulator: GraphEmulator, text: str) -> dict[str, Any]:
    made = emulator.state.add_comment({"account": ACCOUNT, "from_id": "4440001", "text": text})
    return {
        "kind": "comment",
        "account_id": ACCOUNT,
        "comment_id": made["id"],
        "media_id": "1790000000001",
        "occurred_at": made["timestamp"].replace("+0000", "+00:00"),
        "from_id": "4440001",
        "from_username": "ana",
        "text": text,
    }


async def _run(
    runtime: EngineRuntime, account: Any, spec: GraphSpec, event: dict[str, Any]
) -> ExecutionRead:
    meta = RunMeta(
        flow_name="rag",
        workspace_id=account.workspace_id,
        flow_id=uuid.uuid4(),
        flow_version_id=uuid.uuid4(),
    )
    await start_graph_run(spec, event, meta)
    async with runtime.db.session() as session:
        return await get_execution(session, meta.execution_id)


async def test_a_question_gets_a_grounded_reply_in_the_ledger(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
    llm: ScriptedLLM,
    tmp_path: Path,
) -> None:
    account, base = await _prepare(runtime, graph_emulator, llm, tmp_path)
    # rules are tried in order: only the answer's prompt holds the shipping passage
    llm.script("orders above 50 euros", reply=GROUNDED)
    llm.script("do you ship to spain", tool_call={"arguments": {"label": "question"}})
    llm.script("this mug arrived broken", tool_call={"arguments": {"label": "complaint"}})
    spec = rag_graph(base.id)

    question = comment(graph_emulator, "Do you ship to Spain?")
    execution = await _run(runtime, account, spec, question)
    assert execution.status == "completed", execution.error
    statuses = {n.node_id: n.status for n in execution.node_runs}
    assert statuses == dict.fromkeys(["comment", "intent", "answer", "reply"], "completed")
    assert execution.node("intent").fired_ports == ["question"]
    answer = execution.node("answer").output
    assert answer["answer"] == GROUNDED
    assert answer["sources"][0]["source"] == "shipping.md" and answer["sources"][0]["cited"]
    assert execution.node("reply").output["result"]["status"] == "sandboxed"

    (row,) = await ledger(runtime, account_id=account.id)
    assert (row.action, row.status, row.sandbox, row.target) == (
        "reply_comment",
        "sandboxed",
        True,
        question["comment_id"],
    )
    assert row.payload["text"] == GROUNDED
    assert graph_emulator.calls(method="POST") == [], "a sandboxed run sends nothing"
    classify, grounded = llm.chat_requests
    assert "tools" in classify and "tools" not in grounded
    assert "[1] (source: shipping.md)" in grounded["messages"][1]["content"]

    complaint = comment(graph_emulator, "This mug arrived broken!")
    execution = await _run(runtime, account, spec, complaint)
    assert execution.status == "completed", execution.error
    assert execution.node("intent").fired_ports == ["complaint"]
    assert execution.node("answer").status == "skipped"
    assert execution.node("reply").status == "skipped"
    assert len(await ledger(runtime, account_id=account.id)) == 1
    assert len(llm.chat_requests) == 3, "a complaint is classified, never answered"
