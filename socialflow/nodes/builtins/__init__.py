"""The node kinds that ship with Socialflow."""

from __future__ import annotations

from socialflow.nodes._base import BaseNode
from socialflow.nodes.builtins.ai import (
    IntentClassifierNode,
    KnowledgeAnswerNode,
    KnowledgeRetrieveNode,
    LLMPromptNode,
)
from socialflow.nodes.builtins.contacts import (
    ContactAddTagNode,
    ContactRemoveTagNode,
    ContactSetFieldNode,
)
from socialflow.nodes.builtins.conversation import InstagramAskNode
from socialflow.nodes.builtins.data import SetNode
from socialflow.nodes.builtins.http import HttpRequestNode
from socialflow.nodes.builtins.instagram_actions import (
    InstagramHideCommentNode,
    InstagramPrivateReplyNode,
    InstagramReplyCommentNode,
    InstagramSendDMNode,
)
from socialflow.nodes.builtins.instagram_publishing import (
    InstagramInsightsNode,
    InstagramPublishNode,
)
from socialflow.nodes.builtins.instagram_triggers import (
    InstagramCommentTriggerNode,
    InstagramDMTriggerNode,
    InstagramMentionTriggerNode,
)
from socialflow.nodes.builtins.logic import ConditionNode, DelayNode, StopNode, SwitchNode
from socialflow.nodes.builtins.rotate import RotateNode
from socialflow.nodes.builtins.triggers import (
    ManualTriggerNode,
    ScheduleTriggerNode,
    WebhookTriggerNode,
)

__all__ = [
    "BUILTIN_NODES",
    "ConditionNode",
    "ContactAddTagNode",
    "ContactRemoveTagNode",
    "ContactSetFieldNode",
    "DelayNode",
    "HttpRequestNode",
    "InstagramAskNode",
    "InstagramCommentTriggerNode",
    "InstagramDMTriggerNode",
    "InstagramHideCommentNode",
    "InstagramInsightsNode",
    "InstagramMentionTriggerNode",
    "InstagramPrivateReplyNode",
    "InstagramPublishNode",
    "InstagramReplyCommentNode",
    "InstagramSendDMNode",
    "IntentClassifierNode",
    "KnowledgeAnswerNode",
    "KnowledgeRetrieveNode",
    "LLMPromptNode",
    "ManualTriggerNode",
    "RotateNode",
    "ScheduleTriggerNode",
    "SetNode",
    "StopNode",
    "SwitchNode",
    "WebhookTriggerNode",
]

BUILTIN_NODES: tuple[type[BaseNode], ...] = (
    ManualTriggerNode,
    WebhookTriggerNode,
    ScheduleTriggerNode,
    InstagramCommentTriggerNode,
    InstagramDMTriggerNode,
    InstagramMentionTriggerNode,
    ConditionNode,
    SwitchNode,
    SetNode,
    RotateNode,
    DelayNode,
    StopNode,
    HttpRequestNode,
    InstagramReplyCommentNode,
    InstagramPrivateReplyNode,
    InstagramSendDMNode,
    InstagramHideCommentNode,
    ContactAddTagNode,
    ContactRemoveTagNode,
    ContactSetFieldNode,
    InstagramAskNode,
    InstagramPublishNode,
    InstagramInsightsNode,
    LLMPromptNode,
    IntentClassifierNode,
    KnowledgeRetrieveNode,
    KnowledgeAnswerNode,
)
