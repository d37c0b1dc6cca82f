"""The ask node saves a valid answer into a contact field through the run's real contact
(``RunContact`` on the database): stored once, checked against the field's type, never for an
invalid answer, only in the run's view in a test run."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from socialflow.contacts import Contact, ContactFieldValue, RunContact
from socialflow.core.errors import UserError
from socialflow.nodes import AwaitReply, NodeContext, Reply
from socialflow.nodes.builtins import InstagramAskNode
from socialflow.orchestration import EngineRuntime
from tests.fixtures.contacts import rows
from tests.fixtures.context import make_context
from tests.nodes.test_ask import Recorder
from tests.nodes.test_contact_nodes import define_field, person_wrote

NOW = datetime.now(UTC)


def ask(**config: Any) -> InstagramAskNode:
    return InstagramAskNode(
        InstagramAskNode.Config.model_validate(
            {"question": "Your email?", "expects": "email", "save_to_field": "email", **config}
        )
    )


async def context(
    runtime: EngineRuntime,
    workspace: uuid.UUID,
    event: dict[str, Any],
    reply: Reply,
    *,
    sandbox: bool = False,
) -> tuple[NodeContext, Recorder]:
    service = Recorder()
    ctx: NodeContext = make_context(trigger=event, node_id="ask", node_kind="instagram.ask")
    ctx.instagram = service
    ctx.reply = reply
    ctx.contacts = await RunContact.load(runtime.db, workspace, event, sandbox=sandbox)
    return ctx, service


def answer(text: str, tries: int = 0) -> Reply:
    return Reply(kind="message", text=text, occurred_at=NOW, state={"tries": tries})


async def stored(runtime: EngineRuntime, workspace: uuid.UUID) -> list[Any]:
    [contact] = await rows(runtime.db, Contact, Contact.workspace_id == workspace)
    values = await rows(runtime.db, ContactFieldValue, ContactFieldValue.contact_id == contact.id)
    return [v.value for v in values]


async def test_a_valid_answer_is_saved_to_the_field_and_shown_in_the_output(
    runtime: EngineRuntime,
) -> None:
    workspace, event = await person_wrote(runtime, "hi")
    await define_field(runtime.db, workspace, "email", "email")
    ctx, service = await context(runtime, workspace, event, answer(" Ann@Example.COM "))
    out = await ask().run(ctx)
    assert out["answer"]["answer"] == "Ann@example.com"
    assert out["answer"]["saved"] == {"email": "Ann@example.com"}
    assert await stored(runtime, workspace) == ["Ann@example.com"]
    assert ctx.contacts is not None
    assert ctx.contacts.view["fields"]["email"] == "Ann@example.com"  # type: ignore[attr-defined]
    # answering again (a continuation run twice) keeps one value, the same
    again, _ = await context(runtime, workspace, event, answer("Ann@example.com"))
    await ask().run(again)
    assert await stored(runtime, workspace) == ["Ann@example.com"]
    assert service.requests == []


async def test_an_invalid_answer_saves_nothing_and_asks_again(runtime: EngineRuntime) -> None:
    workspace, event = await person_wrote(runtime, "hi")
    await define_field(runtime.db, workspace, "email", "email")
    ctx, service = await context(runtime, workspace, event, answer("nope"))
    with pytest.raises(AwaitReply):
        await ask().run(ctx)
    assert await stored(runtime, workspace) == []
    assert len(service.requests) == 1
    last, _ = await context(runtime, workspace, event, answer("nope", tries=2))
    assert set(await ask(max_tries=3).run(last)) == {"invalid"}
    assert await stored(runtime, workspace) == []


async def test_a_value_the_field_refuses_fails_the_node_naming_node_and_field(
    runtime: EngineRuntime,
) -> None:
    workspace, event = await person_wrote(runtime, "hi")
    await define_field(runtime.db, workspace, "age", "number")
    ctx, _ = await context(runtime, workspace, event, answer("about thirty"))
    with pytest.raises(UserError) as refused:
        await ask(expects="text", save_to_field="age").run(ctx)
    assert refused.value.code == "contact_field_invalid"
    message = refused.value.message
    assert "node 'ask'" in message and "'save_to_field'" in message and "'age'" in message
    assert "number" in message
    assert await stored(runtime, workspace) == []


async def test_an_undefined_field_or_a_run_without_a_person_is_refused(
    runtime: EngineRuntime,
) -> None:
    workspace, event = await person_wrote(runtime, "hi")
    ctx, _ = await context(runtime, workspace, event, answer("a@b.example"))
    with pytest.raises(UserError) as unknown:
        await ask(save_to_field="mail").run(ctx)
    assert unknown.value.code == "contact_field_unknown"
    assert "'mail'" in unknown.value.message and "'save_to_field'" in unknown.value.message
    nobody, _ = await context(runtime, workspace, event, answer("a@b.example"))
    nobody.contacts = None
    with pytest.raises(UserError) as missing:
        await ask().run(nobody)
    assert missing.value.code == "contact_missing"
    # without save_to_field, no contact is needed
    assert (await ask(save_to_field="").run(nobody))["answer"]["valid"] is True


async def test_a_test_run_saves_to_the_view_only(runtime: EngineRuntime) -> None:
    workspace, event = await person_wrote(runtime, "hi")
    await define_field(runtime.db, workspace, "email", "email")
    ctx, _ = await context(runtime, workspace, event, answer("a@b.example"), sandbox=True)
    out = await ask().run(ctx)
    assert out["answer"]["saved"] == {"email": "a@b.example"}
    assert ctx.contacts is not None
    assert ctx.contacts.view["fields"]["email"] == "a@b.example"  # type: ignore[attr-defined]
    assert await stored(runtime, workspace) == []


@pytest.mark.parametrize(
    "key", ["Email", "e-mail", "1email", "e" * 41, "email;drop table", "../email", " email"]
)
def test_save_to_field_takes_a_field_key_only(key: str) -> None:
    with pytest.raises(ValidationError) as refused:
        ask(save_to_field=key)
    assert "save_to_field" in str(refused.value)
