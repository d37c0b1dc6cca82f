"""Token usage and cost of a run: kept per node through the output cap, totalled on the row."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from socialflow.core.credentials import Credential, key_wrapper, parse_secret, seal_credential
from socialflow.knowledge import Usage, sum_usage
from socialflow.orchestration import (
    EngineRuntime,
    ExecutionRead,
    FlowExecution,
    GraphSpec,
    RunMeta,
    get_execution,
    start_graph_run,
)
from socialflow.orchestration._recorder import cap_json
from tests.fixtures.llm_server import ScriptedLLM, allowing_loopback, prompt_text, serve_llm

MODEL = "gpt-4o-mini"  # priced at 0.15 / 0.60 USD per million tokens by default
LONG_REPLY = " ".join(f"word{n}" for n in range(600))  # ~4.5 KB of text


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with serve_llm() as server:
        yield server


def two_model_graph() -> GraphSpec:
    """Manual trigger → intent classifier (usage inside the fired port) → (question) LLM prompt
    (usage on its own port)."""
    model = {"credential": "Scripted", "model": MODEL}
    return GraphSpec.model_validate(
        {
            "nodes": [
                {"id": "t", "kind": "trigger.manual"},
                {
                    "id": "intent",
                    "kind": "ai.intent_classifier",
                    "config": {
                        **model,
                        "labels": [{"name": "question", "description": "Asks something."}],
                    },
                },
                {
                    "id": "reply",
                    "kind": "ai.llm_prompt",
                    "config": {**model, "prompt": "Answer briefly: {{ trigger.text }}"},
                },
            ],
            "edges": [
                {"source": "t", "source_port": "event", "target": "intent"},
                {"source": "intent", "source_port": "question", "target": "reply"},
            ],
        }
    )


async def add_credential(runtime: EngineRuntime, workspace: uuid.UUID, llm: ScriptedLLM) -> None:
    from socialflow.api.workspaces.models import Workspace

    runtime.settings = allowing_loopback(runtime.settings)  # the scripted server's host
    async with runtime.db.session() as session:
        session.add(Workspace(id=workspace, name=f"w-{workspace.hex[:6]}"))
        await session.flush()
        row = Credential(workspace_id=workspace, name="Scripted", kind="openai")
        secret = parse_secret("openai", {"api_key": "sk-test-key", "base_url": llm.url})
        seal_credential(row, secret, key_wrapper(runtime.settings))
        session.add(row)


async def run_graph(
    runtime: EngineRuntime, spec: GraphSpec, workspace: uuid.UUID, text: str
) -> tuple[ExecutionRead, FlowExecution]:
    meta = RunMeta(flow_name="usage", workspace_id=workspace)
    await start_graph_run(spec, {"text": text}, meta)
    async with runtime.db.session() as session:
        row = await session.get(FlowExecution, meta.execution_id)
        assert row is not None
        return await get_execution(session, meta.execution_id), row


def script_question(llm: ScriptedLLM, reply: str) -> None:
    llm.script("answer briefly", reply=reply)
    llm.script("do you ship", tool_call={"arguments": {"label": "question"}})


def assert_row_totals(row: FlowExecution, total: Usage) -> None:
    assert (row.llm_calls, row.input_tokens, row.output_tokens, row.total_tokens) == (
        total.calls,
        total.input_tokens,
        total.output_tokens,
        total.total_tokens,
    )
    assert row.cost_usd == pytest.approx(total.cost_usd)
    assert row.unpriced_calls == total.unpriced_calls


async def test_a_run_of_two_model_calling_nodes_totals_their_usage_on_the_row(
    runtime: EngineRuntime, llm: ScriptedLLM
) -> None:
    workspace = uuid.uuid4()
    await add_credential(runtime, workspace, llm)
    script_question(llm, "Yes, we ship to Spain.")
    execution, row = await run_graph(runtime, two_model_graph(), workspace, "Do you ship to Spain?")
    assert execution.status == "completed", execution.error

    intent, reply = execution.node("intent").usage, execution.node("reply").usage
    assert intent is not None and reply is not None
    assert intent.calls == reply.calls == 1 and intent.model == reply.model == MODEL
    assert reply.output_tokens == 5  # the server counts words: "Yes, we ship to Spain."
    # the server counts the words of each prompt it was sent
    prompts = [len(prompt_text(body).split()) for body in llm.chat_requests]
    assert len(prompts) == 2 and all(prompts)
    assert row.llm_calls == 2
    assert row.input_tokens == sum(prompts)
    assert row.output_tokens == intent.output_tokens + reply.output_tokens
    assert row.total_tokens == row.input_tokens + row.output_tokens
    assert row.cost_usd == pytest.approx(
        (row.input_tokens * 0.15 + row.output_tokens * 0.60) / 1_000_000
    )
    assert row.cost_usd > 0 and row.unpriced_calls == 0
    assert (execution.llm_calls, execution.total_tokens) == (2, row.total_tokens)
    assert execution.node("t").usage is None, "a trigger calls no model"


async def test_a_truncated_output_still_counts_its_usage(
    runtime: EngineRuntime, llm: ScriptedLLM
) -> None:
    runtime.settings.engine.max_recorded_bytes = 1000
    workspace = uuid.uuid4()
    await add_credential(runtime, workspace, llm)
    script_question(llm, LONG_REPLY)
    execution, row = await run_graph(runtime, two_model_graph(), workspace, "Do you ship here?")
    assert execution.status == "completed", execution.error

    reply = execution.node("reply")
    assert reply.output_truncated and reply.output["truncated"] is True
    assert reply.usage is not None and reply.usage.output_tokens == 600
    assert row.llm_calls == 2 and row.output_tokens >= 600
    assert_row_totals(row, sum_usage(n.output for n in execution.node_runs if n.output))


async def test_a_run_without_ai_nodes_has_zero_totals(runtime: EngineRuntime) -> None:
    spec = GraphSpec.model_validate(
        {
            "nodes": [
                {"id": "t", "kind": "trigger.manual"},
                {"id": "set", "kind": "data.set", "config": {"values": {"usage": "none"}}},
            ],
            "edges": [{"source": "t", "source_port": "event", "target": "set"}],
        }
    )
    execution, row = await run_graph(runtime, spec, uuid.uuid4(), "hello")
    assert execution.status == "completed", execution.error
    assert_row_totals(row, Usage())
    assert all(n.usage is None for n in execution.node_runs)


def test_the_cap_keeps_a_nodes_usage_in_the_preview() -> None:
    usage = Usage(provider="openai", model=MODEL, calls=1, input_tokens=7, total_tokens=7)
    classified = {
        "question": {"label": "question", "text": "x" * 5000, "usage": usage.model_dump()}
    }
    stored, truncated = cap_json(classified, 1000)
    assert truncated and stored["usage"] == usage.model_dump()
    assert Usage.of_output(stored) == usage

    plain, truncated = cap_json({"out": "x" * 5000}, 1000)
    assert truncated and "usage" not in plain


def test_only_usage_objects_count_as_model_usage() -> None:
    mine = Usage(calls=1, input_tokens=3, output_tokens=2, total_tokens=5).model_dump()
    # an HTTP node passing on an API answer that has a ``usage`` of its own
    foreign: dict[str, Any] = {"response": {"usage": {"prompt_tokens": 9, "total_tokens": 9}}}
    assert Usage.of_output(foreign) is None
    assert Usage.of_output({"usage": Usage().model_dump()}) is None, "no call, no usage"
    assert Usage.of_output({"text": "hi", "usage": mine}) == Usage.model_validate(mine)
    assert sum_usage([foreign, {"usage": mine}, {"usage": mine}]).calls == 2
