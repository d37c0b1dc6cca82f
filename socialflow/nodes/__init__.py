"""Node kinds: the contract every node implements, the registry, and the built-in kinds.

Nodes know neither Prefect, FastAPI nor the database; everything reaches them through
``NodeContext``.
"""

from socialflow.nodes._base import (
    BaseNode,
    Category,
    ChatModelProvider,
    ContactService,
    CredentialResolver,
    KnowledgeRetriever,
    NodeConfig,
    NodeContext,
    NodeDescription,
    Port,
    PublishingService,
    Rejection,
    ports_compatible,
)
from socialflow.nodes._registry import ENTRY_POINT_GROUP, NodeRegistry, default_registry
from socialflow.nodes._template import (
    Expression,
    Reference,
    Template,
    TemplateField,
    evaluate,
    references,
    render,
    template_fields,
)
from socialflow.nodes._wait import AwaitReply, Reply, WaitRequest

__all__ = [
    "ENTRY_POINT_GROUP",
    "AwaitReply",
    "BaseNode",
    "Category",
    "ChatModelProvider",
    "ContactService",
    "CredentialResolver",
    "Expression",
    "KnowledgeRetriever",
    "NodeConfig",
    "NodeContext",
    "NodeDescription",
    "NodeRegistry",
    "Port",
    "PublishingService",
    "Reference",
    "Rejection",
    "Reply",
    "Template",
    "TemplateField",
    "WaitRequest",
    "default_registry",
    "evaluate",
    "ports_compatible",
    "references",
    "render",
    "template_fields",
]
