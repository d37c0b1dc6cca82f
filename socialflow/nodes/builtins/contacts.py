"""Contact actions: tag and untag the person whose event started the run, set their fields.

They act through ``ctx.contacts``, the run's contact (runs triggered by an Instagram event
that names a person). A tag the workspace has not defined yet is created; a field must be
defined, and its value is checked against the field's type. In an editor's test run the
changes reach the run's ``contact`` only: nothing is stored.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from socialflow.core.errors import UserError
from socialflow.nodes._base import BaseNode, ContactService, NodeConfig, NodeContext, Port
from socialflow.nodes._template import Template

__all__ = ["ContactAddTagNode", "ContactRemoveTagNode", "ContactSetFieldNode"]

_TAGS = Field(
    min_length=1,
    max_length=20,
    description="Tag names (1 to 60 letters, digits, spaces or _ - . :); templates allowed.",
)
_OUT = (Port(name="out", type="json", description="The input, passed on, and what changed."),)


def _contacts(ctx: NodeContext) -> ContactService:
    if ctx.contacts is None:
        msg = (
            f"node {ctx.node_id!r} ({ctx.node_kind}): this run has no contact; contact actions "
            "need a run started by an Instagram event from a person (comment, DM, postback…)"
        )
        raise UserError(msg, code="contact_missing")
    return ctx.contacts


def _tags(ctx: NodeContext, templates: list[str]) -> list[str]:
    names = [ctx.render_text(t, field_name=f"tags.{i}").strip() for i, t in enumerate(templates)]
    return [n for n in names if n]


class _ContactAction(BaseNode):
    category = "action"
    icon = "user"
    inputs: ClassVar[tuple[Port, ...]] = (Port(name="in", description="Passed on unchanged."),)
    outputs: ClassVar[tuple[Port, ...]] = _OUT


class ContactAddTagNode(_ContactAction):
    """Adds tags to the contact of the run."""

    kind = "contact.add_tag"
    title = "Add tag"
    description = "Tags the person whose Instagram event started the run."
    example_config: ClassVar[dict[str, Any]] = {"tags": ["lead"]}

    class Config(NodeConfig):
        tags: list[Template] = _TAGS

    config: Config

    async def run(self, ctx: NodeContext, *args: Any, **inputs: Any) -> dict[str, Any]:
        added = await _contacts(ctx).add_tags(_tags(ctx, self.config.tags))
        return {"out": {"input": inputs.get("in"), "tags_added": added}}


class ContactRemoveTagNode(_ContactAction):
    """Removes tags from the contact of the run."""

    kind = "contact.remove_tag"
    title = "Remove tag"
    description = "Removes tags from the person whose Instagram event started the run."
    example_config: ClassVar[dict[str, Any]] = {"tags": ["lead"]}

    class Config(NodeConfig):
        tags: list[Template] = _TAGS

    config: Config

    async def run(self, ctx: NodeContext, *args: Any, **inputs: Any) -> dict[str, Any]:
        removed = await _contacts(ctx).remove_tags(_tags(ctx, self.config.tags))
        return {"out": {"input": inputs.get("in"), "tags_removed": removed}}


class ContactSetFieldNode(_ContactAction):
    """Sets one custom field of the contact of the run, checked against the field's type."""

    kind = "contact.set_field"
    title = "Set contact field"
    description = (
        "Sets a custom field (text, number, date, boolean, email, phone, URL, choice) of the "
        "person whose Instagram event started the run; an empty value clears it."
    )
    example_config: ClassVar[dict[str, Any]] = {"field": "email", "value": "{{ trigger.text }}"}

    class Config(NodeConfig):
        field: str = Field(
            pattern=r"^[a-z][a-z0-9_]{0,39}$",
            description="The field's key, as defined in the workspace's contact fields.",
        )
        value: Template = Field(
            max_length=4000,
            description="The value; a lone {{ expression }} keeps its type (number, boolean).",
        )

    config: Config

    async def run(self, ctx: NodeContext, *args: Any, **inputs: Any) -> dict[str, Any]:
        service = _contacts(ctx)
        value = ctx.render(self.config.value, field_name="value")
        try:
            stored = await service.set_field(self.config.field, value)
        except UserError as exc:
            msg = f"node {ctx.node_id!r} ({ctx.node_kind}) field 'value': {exc.message}"
            raise UserError(msg, code=exc.code) from exc
        return {"out": {"input": inputs.get("in"), "field": self.config.field, "value": stored}}
