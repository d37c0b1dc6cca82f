"""Untrusted templates, driven through the real engine, API and CLI as a flow author would.

A template is code a workspace editor writes and every worker runs inside its event loop: it
must fail fast and clearly when it tries to loop or allocate without bound, print what it
means (never the word ``None``), and be refused at save and publish time when it cannot run.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

import pytest

from socialflow.core.errors import ValidationError
from socialflow.instagram import CommentEvent, MentionEvent, PostbackEvent
from socialflow.orchestration import (
    EngineRuntime,
    ExecutionRead,
    GraphSpec,
    RunMeta,
    get_execution,
    start_graph_run,
)
from tests.api.conftest import app, client, team  # noqa: F401 - the API fixtures
from tests.api.test_flows import Flows
from tests.test_cli import socialflow

BOMB = "{% for i in range(20000) %}{% for j in range(20000) %}x{% endfor %}{% endfor %}"


def set_flow(
    values: dict[str, str], *, trigger: str = "trigger.manual", **settings: Any
) -> GraphSpec:
    """A trigger feeding one set node (``set``) with these templates."""
    return GraphSpec.model_validate(
        {
            "nodes": [
                {"id": "t", "kind": trigger},
                {
                    "id": "set",
                    "kind": "data.set",
                    "config": {"values": values},
                    "settings": settings,
                },
            ],
            "edges": [{"source": "t", "source_port": "event", "target": "set"}],
        }
    )


async def run(
    runtime: EngineRuntime, spec: GraphSpec, trigger: dict[str, Any] | None = None
) -> ExecutionRead:
    meta = RunMeta(flow_name="templates")
    await start_graph_run(spec, trigger or {}, meta)
    async with runtime.db.session() as session:
        return await get_execution(session, meta.execution_id)


# --- bounds -----------------------------------------------------------------------------


@pytest.mark.timeout(120)  # unbounded, the bomb holds the event loop for many minutes
async def test_a_loop_bomb_fails_its_node_fast_without_slowing_other_runs(
    runtime: EngineRuntime,
) -> None:
    other = GraphSpec.model_validate(
        {
            "nodes": [
                {"id": "t", "kind": "trigger.manual"},
                {
                    "id": "greet",
                    "kind": "data.set",
                    "config": {"values": {"g": "Hi {{ trigger.n }}"}},
                },
                {"id": "wait", "kind": "test.sleep", "config": {"seconds": 0.05}},
                {"id": "if", "kind": "logic.condition", "config": {"expression": "trigger.n > 1"}},
            ],
            "edges": [
                {"source": "t", "source_port": "event", "target": "greet"},
                {"source": "greet", "target": "wait"},
                {"source": "wait", "target": "if"},
            ],
        }
    )
    bomb = set_flow({"text": BOMB}, timeout_seconds=5)
    # the same flow with a loop of a normal size: what a run shares the worker with anyway
    harmless = set_flow({"text": BOMB.replace("20000", "20")}, timeout_seconds=5)

    async def timed_alongside(neighbour: GraphSpec) -> tuple[float, ExecutionRead]:
        async def timed() -> float:
            started = time.perf_counter()
            assert (await run(runtime, other, {"n": 2})).status == "completed"
            return time.perf_counter() - started

        duration, execution = await asyncio.gather(timed(), run(runtime, neighbour))
        return duration, execution

    await timed_alongside(harmless)  # warm-up: Prefect flow registration, compiled caches
    await timed_alongside(bomb)
    alone: list[float] = []
    beside_bomb: list[float] = []
    for _ in range(7):  # interleaved, so drift of a shared machine hits both alike
        duration, execution = await timed_alongside(harmless)
        assert execution.status == "completed", execution.error
        alone.append(duration)
        duration, execution = await timed_alongside(bomb)
        beside_bomb.append(duration)
        node = execution.node("set")
        assert execution.status == "failed"
        assert node.error_code == "template_too_expensive", node.error
        assert "node 'set' (data.set) field 'values.text'" in (node.error or "")
        assert "50,000 steps" in (node.error or "")
    ratio = statistics.median(beside_bomb) / statistics.median(alone)
    assert ratio <= 1.5, f"other runs took {ratio:.2f}x as long beside the bomb: {beside_bomb}"


#: Each builds far more than the output limit (1,000,000 characters) in one operation.
AMPLIFIERS = {
    "join": "{{ range(100000)|join('x' * 100) }}",
    "center": "{{ 'x'|center(10000000) }}",
    "format": "{{ '%10000000d'|format(1) }}",
    "percent": "{{ '%10000000d' % 1 }}",
    "str_format": "{{ '{:>10000000}'.format(1) }}",
    "repeat": "{{ 'ab' * 5000000 }}",
    "range": "{{ range(1000000)|list|length }}",
    "power": "{{ (10 ** 100) ** 100 }}",
    "indent": "{{ ('a\n' * 1000)|indent(10000) }}",
    "wordwrap": "{{ ('a ' * 5000)|wordwrap(1, wrapstring='x' * 1000) }}",
    "replace": "{{ ('a' * 1000)|replace('a', 'b' * 10000) }}",
    "ljust": "{{ 'x'.ljust(10000000) }}",
    "str_join": "{{ ('x' * 1000).join(range(10000)|map('string')) }}",
    "doubling": (
        "{% set ns = namespace(s='ab') %}{% for i in range(23) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}"
    ),
    "macro": (
        "{% macro twice(s) %}{{ s }}{{ s }}{% endmacro %}{% set ns = namespace(s='ab') %}"
        "{% for i in range(23) %}{% set ns.s = twice(ns.s) %}{% endfor %}{{ ns.s|length }}"
    ),
    "output": "{{ trigger.half }}{{ trigger.half }}{{ trigger.half }}",
}


async def test_operations_that_build_large_values_are_capped(runtime: EngineRuntime) -> None:
    nodes: list[dict[str, Any]] = [{"id": "t", "kind": "trigger.manual"}]
    edges = []
    for name, template in {**AMPLIFIERS, "fits": "{{ 'x' * 900000 }}"}.items():
        nodes.append({"id": name, "kind": "data.set", "config": {"values": {"v": template}}})
        edges.append({"source": "t", "source_port": "event", "target": name})
    # large but within the limit: renders, and a later node can measure it
    nodes.append(
        {
            "id": "size",
            "kind": "data.set",
            "config": {"values": {"n": "{{ nodes.fits.out.v|length }}"}},
        }
    )
    edges.append({"source": "fits", "target": "size"})
    spec = GraphSpec.model_validate({"nodes": nodes, "edges": edges})

    execution = await run(runtime, spec, {"half": "y" * 400_000})

    assert execution.node("fits").status == "completed", execution.node("fits").error
    assert execution.node("size").output == {"out": {"n": 900_000}}
    for name in AMPLIFIERS:
        node = execution.node(name)
        assert node.status == "failed", f"{name}: {node.status} {node.output}"
        assert node.error_code == "template_too_large", f"{name}: {node.error}"
        assert f"node {name!r} (data.set) field 'values.v'" in (node.error or "")
        assert "limit" in (node.error or "")


async def test_whole_scope_and_self_containing_values(runtime: EngineRuntime) -> None:
    spec = GraphSpec.model_validate(
        {
            "nodes": [
                {"id": "t", "kind": "trigger.manual"},
                {"id": "dump", "kind": "data.set", "config": {"values": {"all": "{{ nodes }}"}}},
                {
                    "id": "after",
                    "kind": "data.set",
                    "config": {
                        "values": {
                            "again": "{{ nodes }}",
                            "text": "seen: {{ nodes.dump.out.all.t.event.n }}",
                        }
                    },
                },
                {
                    "id": "loop",
                    "kind": "data.set",
                    "config": {
                        "values": {"me": "{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}"}
                    },
                },
                {"id": "huge", "kind": "data.set", "config": {"values": {"all": "x{{ nodes }}"}}},
            ],
            "edges": [
                {"source": "t", "source_port": "event", "target": "dump"},
                {"source": "dump", "target": "after"},
                {"source": "t", "source_port": "event", "target": "loop"},
                {"source": "after", "target": "huge"},
            ],
        }
    )

    execution = await run(runtime, spec, {"n": 7, "pad": "p" * 400_000})

    dump, after = execution.node("dump"), execution.node("after")
    assert dump.status == "completed", dump.error
    # a snapshot of what had run, not the run's live table of outputs (which would then
    # contain itself)
    assert dump.output_truncated
    assert after.status == "completed", after.error
    assert after.output_truncated
    loop = execution.node("loop")
    assert loop.status == "failed"
    assert loop.error_code == "template_recursive_value"
    assert "contains itself" in (loop.error or "")
    huge = execution.node("huge")
    assert huge.status == "failed"
    assert huge.error_code == "template_too_large", huge.error  # 3 copies of the 400 kB pad


async def test_a_whole_scope_value_is_a_copy_a_later_node_can_read(
    runtime: EngineRuntime,
) -> None:
    spec = set_flow({"all": "{{ nodes }}", "n": "{{ trigger.n }}"})
    spec.nodes.append(
        spec.nodes[1].model_copy(
            update={"id": "read", "config": {"values": {"n": "{{ nodes.set.out.all.t.event.n }}"}}}
        )
    )
    spec.edges.append(
        spec.edges[0].model_copy(update={"source": "set", "source_port": "out", "target": "read"})
    )

    execution = await run(runtime, spec, {"n": 7})

    assert execution.status == "completed", execution.error
    assert execution.node("set").output == {"out": {"all": {"t": {"event": {"n": 7}}}, "n": 7}}
    assert execution.node("read").output == {"out": {"n": 7}}


# --- None and missing-but-optional values ----------------------------------------------


async def test_none_and_optional_trigger_fields_print_nothing(runtime: EngineRuntime) -> None:
    comment = CommentEvent(account_id="17841400000000000", comment_id="c1", text="price?")
    mention = MentionEvent(account_id="17841400000000000", media_id="m1", comment_id="c2")
    values = {
        "greeting": "Hi {{ trigger.from_username }}!",
        "joined": "{{ 'Hi ' ~ trigger.from_username ~ '!' }}",
        "raw": "{{ trigger.from_username }}",
    }

    on_comment = await run(
        runtime, set_flow(values, trigger="instagram.comment"), comment.model_dump(mode="json")
    )
    # a mention event has no from_username at all: the trigger's other event kind has it
    on_mention = await run(
        runtime, set_flow(values, trigger="instagram.mention"), mention.model_dump(mode="json")
    )

    for execution in (on_comment, on_mention):
        assert execution.status == "completed", execution.error
        assert execution.node("set").output == {
            "out": {"greeting": "Hi !", "joined": "Hi !", "raw": None}
        }


async def test_a_postback_reads_the_text_it_lacks_as_empty(runtime: EngineRuntime) -> None:
    postback = PostbackEvent(account_id="1784", sender_id="u1", title="Prices", payload="P")
    spec = set_flow({"reply": "You said: {{ trigger.text }}"}, trigger="instagram.dm")

    execution = await run(runtime, spec, postback.model_dump(mode="json"))

    assert execution.status == "completed", execution.error
    assert execution.node("set").output == {"out": {"reply": "You said: "}}


async def test_a_strictly_missing_field_still_fails_clearly(runtime: EngineRuntime) -> None:
    comment = CommentEvent(account_id="1784", comment_id="c1", from_username="ana")
    typo = set_flow({"greeting": "Hi {{ trigger.from_usernme }}"}, trigger="instagram.comment")
    # a free-form payload has no schema: whatever it lacks is missing
    free_form = set_flow({"greeting": "Hi {{ trigger.name }}"})

    with pytest.raises(ValidationError) as refused:
        await start_graph_run(typo, comment.model_dump(mode="json"), RunMeta(flow_name="typo"))
    on_manual = await run(runtime, free_form, {"n": 1})

    (problem,) = refused.value.problems
    assert (problem["code"], problem["node_id"], problem["field"]) == (
        "template_unknown_trigger_field",
        "set",
        "config.values.greeting",
    )
    assert "no field 'from_usernme'" in problem["message"]
    assert "from_username" in problem["message"]  # lists what there is
    node = on_manual.node("set")
    assert node.status == "failed"
    assert node.error_code == "template_error"
    assert "field 'values.greeting'" in (node.error or "")
    assert "'name'" in (node.error or "")


# --- validation: API (draft problems, publish) and CLI -----------------------------------


def reply_graph(message: str) -> dict[str, Any]:
    return {
        "nodes": [
            {"id": "comment", "kind": "instagram.comment"},
            {"id": "reply", "kind": "instagram.reply_comment", "config": {"message": message}},
            {"id": "later", "kind": "data.set", "config": {"values": {"x": "1"}}},
        ],
        "edges": [
            {"source": "comment", "source_port": "event", "target": "reply"},
            {"source": "reply", "source_port": "result", "target": "later"},
        ],
    }


@pytest.fixture
def editor(client: Any, team: Any) -> Flows:  # noqa: F811 - the fixtures imported above
    return Flows(client, team.workspace_id, team.editor.headers)


async def test_a_broken_template_is_listed_and_cannot_be_published(editor: Flows) -> None:
    flow = await editor.create("Replies", graph=reply_graph("Hi {{ trigger.from_username }}"))
    assert flow["problems"] == []
    saved = await editor.call(
        "PATCH",
        f"/{flow['id']}",
        params={"validate": "false"},
        json={"graph": reply_graph("Hi {{ trigger.from_username ")},
    )
    assert saved.status_code == 200
    (problem,) = saved.json()["problems"]
    assert (problem["code"], problem["node_id"], problem["field"]) == (
        "invalid_config",
        "reply",
        "config.message",
    )
    assert "template syntax error on line 1" in problem["message"]

    refused = await editor.call("POST", f"/{flow['id']}/publish")
    assert refused.status_code == 422
    assert refused.json()["details"]["problems"] == [problem]
    versions = (await editor.call("GET", f"/{flow['id']}/versions")).json()
    assert versions["items"] == []

    # saving with validation refuses it outright
    strict = await editor.call(
        "PATCH", f"/{flow['id']}", json={"graph": reply_graph("Hi {{ trigger.from_username ")}
    )
    assert strict.status_code == 422


async def test_templates_may_only_read_upstream_nodes_and_known_fields(editor: Flows) -> None:
    graph = reply_graph(
        "{{ nodes.later.out.x }} {{ nodes['ghost'] }} {{ trigger.from_usernme }} "
        "{{ nodes.comment.event.text }} {{ trigger.get('from_username') }}"
    )
    created = await editor.call(
        "POST", params={"validate": "false"}, json={"name": "R", "graph": graph}
    )
    assert created.status_code == 201
    problems = created.json()["problems"]
    found = {(p["code"], p["node_id"], p["field"]) for p in problems}
    assert found == {
        ("template_node_not_upstream", "reply", "config.message"),
        ("template_unknown_node", "reply", "config.message"),
        ("template_unknown_trigger_field", "reply", "config.message"),
    }
    by_code = {p["code"]: p["message"] for p in problems}
    assert "'later' is not upstream" in by_code["template_node_not_upstream"]
    assert "no node 'ghost'" in by_code["template_unknown_node"]
    assert "no field 'from_usernme'" in by_code["template_unknown_trigger_field"]
    refused = await editor.call("POST", f"/{created.json()['id']}/publish")
    assert refused.status_code == 422
    refused_problems = refused.json()["details"]["problems"]
    assert {(p["code"], p["node_id"], p["field"]) for p in refused_problems} == found


def test_cli_validate_reports_template_problems_and_exits_2(tmp_path: Path) -> None:
    graph = reply_graph("Hi {{ trigger.from_username ")
    graph["nodes"].append(
        {
            "id": "dm",
            "kind": "instagram.private_reply",
            "config": {"text": "{{ nodes.after.out.x }}"},
        }
    )
    graph["edges"].append({"source": "comment", "source_port": "event", "target": "dm"})
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(graph))

    result = socialflow("validate", str(path), env={"SOCIALFLOW_DATA_DIR": str(tmp_path)})

    assert result.returncode == 2, result.stdout + result.stderr
    assert "2 problem(s)" in result.stderr
    assert "[invalid_config] node=reply field=config.message" in result.stderr
    assert "template syntax error on line 1" in result.stderr
    assert "[template_unknown_node] node=dm field=config.text" in result.stderr


@pytest.mark.parametrize("path", ["examples/hello.json"])
def test_shipped_examples_still_validate(path: str, tmp_path: Path) -> None:
    result = socialflow("validate", path, env={"SOCIALFLOW_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
