"""The node contract: what a node kind declares, and the context its ``run()`` receives."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from socialflow.nodes import _template
from socialflow.nodes._wait import Reply

if TYPE_CHECKING:
    import httpx
    import structlog

    from socialflow.core.settings import Settings
    from socialflow.instagram import ActionRequest, ActionResult
    from socialflow.knowledge import ChatModel, RetrievedChunk
    from socialflow.publishing import InsightsRequest, PublishRequest, PublishResult

__all__ = [
    "BaseNode",
    "Category",
    "ChatModelProvider",
    "ContactService",
    "CredentialResolver",
    "InstagramService",
    "KnowledgeRetriever",
    "NodeConfig",
    "NodeContext",
    "NodeDescription",
    "Port",
    "PublishingService",
    "Rejection",
    "ports_compatible",
]

Category = Literal["trigger", "logic", "ai", "action", "data"]


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a trigger does not take an event: a stable ``code`` and a sentence for people.

    Trigger kinds return one from ``rejection``; the dispatcher both decides with it and
    records it, so the event log shows the very reason that kept a flow from running.

    Attributes:
        code: ``filter_not_matched``, ``kind_off``, ``account_filter``, ``media_filter``,
            ``not_mentioned``, ``echo``, ``own_comment`` or ``dashboard_test`` from the
            triggers; the dispatcher adds its own (``flow_paused``, ``account_not_connected``).
        message: The reason in words, naming the field and the value seen.
        field: The event field the failed condition read (``trigger.text``), if any.
    """

    code: str
    message: str
    field: str | None = None


class Port(BaseModel):
    """A typed input or output of a node.

    ``type`` is a dotted name (``json``, ``instagram.comment``); ``any`` joins with everything,
    and a port of type ``a`` accepts ``a.b``. An input with ``many=True`` takes several edges and
    receives a list of the values that arrived; otherwise it takes at most one edge.
    """

    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    type: str = "any"
    many: bool = False
    description: str = ""


def ports_compatible(source_type: str, target_type: str) -> bool:
    """Whether an output of ``source_type`` may feed an input of ``target_type``."""
    if "any" in (source_type, target_type):
        return True
    return source_type == target_type or source_type.startswith(target_type + ".")


class NodeConfig(BaseModel):
    """Base of every node's ``Config``: unknown fields are refused, every field described."""

    model_config = ConfigDict(extra="forbid")


class NodeDescription(BaseModel):
    """What the palette and the config form need to know about a node kind."""

    kind: str
    version: int
    title: str
    description: str
    category: Category
    icon: str
    credentials: list[str]
    inputs: list[Port]
    outputs: list[Port]
    config_schema: dict[str, Any]
    example_config: dict[str, Any]


class CredentialResolver(Protocol):
    """Resolves a credential a node declared, by kind and optional name, to its secret fields."""

    async def get(self, kind: str, name: str | None = None) -> dict[str, Any]: ...


class InstagramService(Protocol):
    """Performs Instagram actions for action nodes: ledger, policy, pacing, sandbox, send."""

    async def perform(self, request: ActionRequest) -> ActionResult: ...


class ContactService(Protocol):
    """The run's contact, for contact nodes: the person whose event started the run."""

    async def add_tags(self, names: list[str]) -> list[str]: ...

    async def remove_tags(self, names: list[str]) -> list[str]: ...

    async def set_field(self, key: str, value: Any) -> Any: ...


class PublishingService(Protocol):
    """Publishes posts through the calendar's engine and reads insights, for Instagram nodes."""

    async def publish(self, request: PublishRequest) -> PublishResult: ...

    async def insights(self, request: InsightsRequest) -> dict[str, Any]: ...


class ChatModelProvider(Protocol):
    """Builds chat models from the run's workspace credentials, for AI nodes."""

    async def get(
        self,
        provider: str,
        *,
        credential: str | None = None,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> ChatModel: ...


class KnowledgeRetriever(Protocol):
    """Searches the knowledge bases of the run's workspace, for AI nodes."""

    async def retrieve(
        self,
        knowledge_base_id: uuid.UUID,
        query: str,
        *,
        k: int = 4,
        score_threshold: float = 0.0,
        filter: Mapping[str, str | int | float | bool] | None = None,
    ) -> list[RetrievedChunk]: ...

    async def refusal_threshold(self, knowledge_base_id: uuid.UUID) -> float: ...


class _NoCredentials:
    async def get(self, kind: str, name: str | None = None) -> dict[str, Any]:
        from socialflow.core.errors import UserError

        msg = f"no credential of kind {kind!r} is available to this run"
        raise UserError(msg, code="credential_missing")


@dataclass
class NodeContext:
    """Everything a node may touch while it runs. Nodes get nothing else.

    Attributes:
        execution_id: The Socialflow execution this node belongs to.
        node_id: The node's id in the graph.
        node_kind: The node's kind.
        label: The node's label as the user wrote it.
        trigger: The payload that started the run.
        outputs: Outputs of nodes that already ran, by node id.
        settings: The process's settings.
        http: An HTTP client for user-directed calls (guards against private addresses).
        logger: A logger bound to the workspace, run and node.
        credentials: Resolver for the node's declared credentials.
        sandbox: When true, action nodes record what they would do and send nothing.
        attempt: 1 for the first try, 2 for the first retry, and so on.
        instagram: The Instagram service for action nodes; None outside a workspace run.
        llm: Chat models from the workspace's credentials; None outside a workspace run.
        retriever: The workspace's knowledge bases; None outside a workspace run.
        publishing: Publishing and insights for Instagram nodes; None outside a workspace run.
        trigger_fields: The fields the run's trigger declares for its payload
            (``BaseNode.trigger_fields``); templates read those the payload lacks as None.
        contact: The person whose Instagram event started the run, as templates see it
            (``contact.tags``, ``contact.fields.email``, ``contact.window.open``); None when
            the run's trigger names nobody.
        contacts: Changes the run's contact (tags, fields); None when there is none.
        reply: Set when a node that raised ``AwaitReply`` is resumed: the contact's answer
            or the timeout.
    """

    execution_id: uuid.UUID
    node_id: str
    node_kind: str
    label: str
    trigger: Mapping[str, Any]
    outputs: Mapping[str, Mapping[str, Any]]
    settings: Settings
    http: httpx.AsyncClient
    logger: structlog.stdlib.BoundLogger
    credentials: CredentialResolver = field(default_factory=_NoCredentials)
    workspace_id: uuid.UUID | None = None
    flow_id: uuid.UUID | None = None
    sandbox: bool = False
    attempt: int = 1
    inputs: Mapping[str, Any] = field(default_factory=dict)
    instagram: InstagramService | None = None
    llm: ChatModelProvider | None = None
    retriever: KnowledgeRetriever | None = None
    publishing: PublishingService | None = None
    trigger_fields: frozenset[str] = frozenset()
    contact: Mapping[str, Any] | None = None
    contacts: ContactService | None = None
    reply: Reply | None = None

    def template_scope(self) -> dict[str, Any]:
        """The names templates and expressions may use: ``trigger``, ``nodes``, ``input`` and
        ``contact`` (None when the run's trigger names nobody).

        A field of ``trigger_fields`` the trigger payload lacks reads as ``None``.
        """
        trigger: Mapping[str, Any] = self.trigger
        if self.trigger_fields:
            trigger = _template.OptionalFields(trigger, self.trigger_fields, "trigger")
        return {
            "trigger": trigger,
            "nodes": self.outputs,
            "input": self.inputs,
            "contact": self.contact,
        }

    def render(self, template: str, *, field_name: str = "template") -> Any:
        """Render a ``{{ ... }}`` template; a lone expression keeps its type (number, dict…)."""
        return _template.render(template, self.template_scope(), where=self._where(field_name))

    def render_text(self, template: str, *, field_name: str = "template") -> str:
        """Render a template to text."""
        return _template.render_text(template, self.template_scope(), where=self._where(field_name))

    def evaluate(self, expression: str, *, field_name: str = "expression") -> Any:
        """Evaluate a bare expression such as ``trigger.text | lower is containing('price')``."""
        return _template.evaluate(expression, self.template_scope(), where=self._where(field_name))

    def _where(self, field_name: str) -> str:
        return f"node {self.node_id!r} ({self.node_kind}) field {field_name!r}"


class BaseNode:
    """Base of every node kind.

    Subclasses set the class attributes, define a nested ``Config(NodeConfig)`` and implement
    ``run``. ``run`` returns a mapping of output port name to value; only the ports it returns
    fire, which is how a node branches. Nodes downstream of ports that did not fire are skipped.
    """

    kind: ClassVar[str]
    version: ClassVar[int] = 1
    title: ClassVar[str]
    description: ClassVar[str] = ""
    category: ClassVar[Category]
    icon: ClassVar[str] = "box"
    credentials: ClassVar[tuple[str, ...]] = ()
    inputs: ClassVar[tuple[Port, ...]] = (Port(name="in"),)
    outputs: ClassVar[tuple[Port, ...]] = (Port(name="out"),)
    Config: ClassVar[type[NodeConfig]] = NodeConfig
    #: The smallest useful valid config: the editor's starting point and the contract test's.
    example_config: ClassVar[dict[str, Any]] = {}
    #: Triggers only: the inbox event kinds this trigger may start a run for.
    event_kinds: ClassVar[tuple[str, ...]] = ()
    #: Triggers only: the top-level fields its payloads may carry, from the event models of
    #: ``event_kinds``. A field some of those events lack reads as None in templates, and a
    #: template naming any other field is refused at validation. Empty for a free-form payload
    #: (manual, webhook), where only the fields a payload has exist.
    trigger_fields: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, config: NodeConfig) -> None:
        self.config = config

    @classmethod
    def input_ports(cls, config: NodeConfig | None = None) -> tuple[Port, ...]:
        """Input ports for a given config; the class attribute unless a kind overrides this."""
        return cls.inputs

    @classmethod
    def output_ports(cls, config: NodeConfig | None = None) -> tuple[Port, ...]:
        """Output ports for a given config (a switch has one port per case)."""
        return cls.outputs

    @classmethod
    def upgrade_config(cls, from_version: int, config: dict[str, Any]) -> dict[str, Any]:
        """Turn a config saved by an older version into this version's. Identity by default."""
        return config

    @classmethod
    def rejection(cls, config: NodeConfig, event: Mapping[str, Any]) -> Rejection | None:
        """Triggers only: why an event of one of ``event_kinds`` should not start a run, given
        this trigger's config (keyword and account filters), or ``None`` to start it. The
        dispatcher calls it and records the answer."""
        return None

    @classmethod
    def accepts(cls, config: NodeConfig, event: Mapping[str, Any]) -> bool:
        """Whether the trigger takes the event: ``rejection`` found nothing against it."""
        return cls.rejection(config, event) is None

    @classmethod
    def is_trigger(cls) -> bool:
        """Whether this kind starts a flow."""
        return cls.category == "trigger"

    @classmethod
    def describe(cls) -> NodeDescription:
        """The palette entry and config form for this kind."""
        return NodeDescription(
            kind=cls.kind,
            version=cls.version,
            title=cls.title,
            description=cls.description or (cls.__doc__ or "").strip().split("\n")[0],
            category=cls.category,
            icon=cls.icon,
            credentials=list(cls.credentials),
            inputs=list(cls.input_ports()),
            outputs=list(cls.output_ports()),
            config_schema=cls.Config.model_json_schema(),
            example_config=cls.example_config,
        )

    async def run(self, ctx: NodeContext, *args: Any, **inputs: Any) -> dict[str, Any]:
        """Do the node's work.

        Args:
            ctx: Everything the node may use.
            **inputs: One keyword per input port that received a value.

        Returns:
            Output port name → value, for each port that fires.
        """
        raise NotImplementedError
