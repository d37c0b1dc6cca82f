"""Contact nodes tag and untag the run's person and set their fields; every template sees
``contact`` (tags, fields, window), so conditions can branch on them."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from socialflow.contacts import Contact, ContactField, ContactTag, ContactTagLink, RunContact
from socialflow.core.db import Database
from socialflow.instagram import build_dm, parse_payload
from socialflow.orchestration import (
    EngineRuntime,
    ExecutionRead,
    GraphSpec,
    RunMeta,
    get_execution,
    start_graph_run,
)
from tests.fixtures.contacts import connect, drain, new_account_id, new_igsid, rows, store


async def define_field(
    db: Database, workspace: uuid.UUID, key: str, kind: str, choices: list[str] | None = None
) -> None:
    async with db.sessionmaker() as session:
        session.add(
            ContactField(
                workspace_id=workspace, key=key, label=key.title(), type=kind, choices=choices or []
            )
        )
        await session.commit()


async def person_wrote(runtime: EngineRuntime, text: str) -> tuple[uuid.UUID, dict[str, Any]]:
    """A workspace whose account got a DM from a new person; the workspace and the event."""
    workspace, account, person = uuid.uuid4(), new_account_id(), new_igsid()
    await connect(runtime.db, workspace, account)
    body = build_dm(text, account_id=account, sender_id=person)
    await store(runtime.db, body)
    await drain(runtime.db, runtime.registry)
    [parsed] = parse_payload(body)
    return workspace, parsed.event.model_dump(mode="json")


async def run(
    runtime: EngineRuntime, nodes: list[dict[str, Any]], trigger: dict[str, Any], **meta: Any
) -> ExecutionRead:
    edges = [
        {"source": a["id"], "source_port": "event" if i == 0 else "out", "target": b["id"]}
        for i, (a, b) in enumerate(itertools.pairwise(nodes))
    ]
    spec = GraphSpec.model_validate({"nodes": nodes, "edges": edges})
    run_meta = RunMeta(flow_name="contacts", **meta)
    await start_graph_run(spec, trigger, run_meta)
    async with runtime.db.session() as session:
        return await get_execution(session, run_meta.execution_id)


DM = {"id": "dm", "kind": "instagram.dm", "config": {}}


async def test_a_run_tags_its_person_and_sets_a_field_later_nodes_see_both(
    runtime: EngineRuntime,
) -> None:
    workspace, event = await person_wrote(runtime, "ann@example.com")
    await define_field(runtime.db, workspace, "email", "email")
    await define_field(runtime.db, workspace, "plan", "choice", ["free", "pro"])
    nodes = [
        DM,
        {"id": "tag", "kind": "contact.add_tag", "config": {"tags": ["lead", "{{ 'via-dm' }}"]}},
        {
            "id": "email",
            "kind": "contact.set_field",
            "config": {"field": "email", "value": "{{ trigger.text }}"},
        },
        {
            "id": "seen",
            "kind": "data.set",
            "config": {
                "values": {
                    "tags": "{{ contact.tags }}",
                    "email": "{{ contact.fields.email }}",
                    "plan": "{{ contact.fields.plan }}",
                    "open": "{{ contact.window.open }}",
                    "lead": "{{ 'lead' in contact.tags }}",
                }
            },
        },
    ]
    execution = await run(runtime, nodes, event, workspace_id=workspace)
    assert execution.status == "completed", execution.error
    seen = execution.node("seen").output["out"]
    assert seen == {
        "tags": ["lead", "via-dm"],
        "email": "ann@example.com",
        "plan": None,
        "open": True,
        "lead": True,
    }
    contact = await _contact(runtime, workspace)
    tagged = await rows(runtime.db, ContactTagLink, ContactTagLink.contact_id == contact.id)
    assert len(tagged) == 2


async def _contact(runtime: EngineRuntime, workspace: uuid.UUID) -> Contact:
    [contact] = await rows(runtime.db, Contact, Contact.workspace_id == workspace)
    return contact


async def test_a_condition_branches_on_the_contacts_tags(runtime: EngineRuntime) -> None:
    workspace, event = await person_wrote(runtime, "hello")
    nodes = [
        DM,
        {"id": "vip", "kind": "logic.condition", "config": {"expression": "'vip' in contact.tags"}},
        {"id": "hi", "kind": "data.set", "config": {"values": {"v": "1"}}},
    ]
    spec = {
        "nodes": nodes,
        "edges": [
            {"source": "dm", "source_port": "event", "target": "vip"},
            {"source": "vip", "source_port": "true", "target": "hi"},
        ],
    }
    first = RunMeta(flow_name="contacts", workspace_id=workspace)
    await start_graph_run(GraphSpec.model_validate(spec), event, first)
    contact = await _contact(runtime, workspace)
    async with runtime.db.sessionmaker() as session:
        tag = ContactTag(workspace_id=workspace, name="vip")
        session.add(tag)
        await session.flush()
        session.add(ContactTagLink(contact_id=contact.id, tag_id=tag.id))
        await session.commit()
    second = RunMeta(flow_name="contacts", workspace_id=workspace)
    await start_graph_run(GraphSpec.model_validate(spec), event, second)
    async with runtime.db.session() as session:
        before = await get_execution(session, first.execution_id)
        after = await get_execution(session, second.execution_id)
    assert before.node("hi").status == "skipped"
    assert after.node("hi").status == "completed"


async def test_a_value_of_the_wrong_type_fails_the_node_naming_field_and_type(
    runtime: EngineRuntime,
) -> None:
    workspace, event = await person_wrote(runtime, "not a number")
    await define_field(runtime.db, workspace, "age", "number")
    nodes = [
        DM,
        {
            "id": "age",
            "kind": "contact.set_field",
            "config": {"field": "age", "value": "{{ trigger.text }}"},
        },
    ]
    execution = await run(runtime, nodes, event, workspace_id=workspace)
    assert execution.status == "failed"
    error = execution.node("age").error or ""
    assert "'age' (number)" in error and "expected a number" in error, error
    assert execution.node("age").error_code == "contact_field_invalid"


async def test_an_undefined_field_is_refused_by_name(runtime: EngineRuntime) -> None:
    workspace, event = await person_wrote(runtime, "x")
    nodes = [
        DM,
        {"id": "f", "kind": "contact.set_field", "config": {"field": "nope", "value": "1"}},
    ]
    execution = await run(runtime, nodes, event, workspace_id=workspace)
    assert execution.node("f").error_code == "contact_field_unknown"
    assert "'nope'" in (execution.node("f").error or "")


async def test_a_test_run_changes_the_contact_it_sees_and_stores_nothing(
    runtime: EngineRuntime,
) -> None:
    workspace, event = await person_wrote(runtime, "x")
    nodes = [
        DM,
        {"id": "tag", "kind": "contact.add_tag", "config": {"tags": ["tested"]}},
        {"id": "seen", "kind": "data.set", "config": {"values": {"tags": "{{ contact.tags }}"}}},
    ]
    execution = await run(runtime, nodes, event, workspace_id=workspace, sandbox=True)
    assert execution.status == "completed", execution.error
    assert execution.node("seen").output["out"] == {"tags": ["tested"]}
    contact = await _contact(runtime, workspace)
    assert await rows(runtime.db, ContactTagLink, ContactTagLink.contact_id == contact.id) == []


async def test_a_run_without_a_person_has_no_contact(runtime: EngineRuntime) -> None:
    nodes = [
        {"id": "go", "kind": "trigger.manual", "config": {}},
        {"id": "tag", "kind": "contact.add_tag", "config": {"tags": ["x"]}},
    ]
    spec = GraphSpec.model_validate(
        {"nodes": nodes, "edges": [{"source": "go", "source_port": "event", "target": "tag"}]}
    )
    meta = RunMeta(flow_name="contacts", workspace_id=uuid.uuid4())
    await start_graph_run(spec, {"kind": "dm", "sender_id": "1"}, meta)
    async with runtime.db.session() as session:
        execution = await get_execution(session, meta.execution_id)
    assert execution.node("tag").error_code == "contact_missing"


async def test_tag_names_are_checked(runtime: EngineRuntime) -> None:
    workspace, event = await person_wrote(runtime, "x")
    contact = await RunContact.load(runtime.db, workspace, event, sandbox=False)
    assert contact is not None and contact.row_id is not None
    for bad in ["", "  ", "<script>", "x" * 61, "a\nb"]:
        try:
            await contact.add_tags([bad])
        except Exception as exc:
            assert getattr(exc, "code", "") == "contact_tag_invalid", bad
        else:
            raise AssertionError(f"tag {bad!r} was accepted")
    assert await contact.add_tags([" spaced tag "]) == ["spaced tag"]
    assert await contact.add_tags(["spaced tag"]) == ["spaced tag"]
    assert contact.view["tags"] == ["spaced tag"]
    assert await contact.remove_tags(["spaced tag", "never-had"]) == ["never-had", "spaced tag"]
    assert contact.view["tags"] == []
