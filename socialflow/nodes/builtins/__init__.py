"""The node kinds that ship with Socialflow."""

from __future__ import annotations

from socialflow.nodes._base import BaseNode
from socialflow.nodes.builtins.data import SetNode
from socialflow.nodes.builtins.http import HttpRequestNode
from socialflow.nodes.builtins.logic import ConditionNode, DelayNode, StopNode, SwitchNode
from socialflow.nodes.builtins.triggers import (
    ManualTriggerNode,
    ScheduleTriggerNode,
    WebhookTriggerNode,
)

__all__ = [
    "BUILTIN_NODES",
    "ConditionNode",
    "DelayNode",
    "HttpRequestNode",
    "ManualTriggerNode",
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
    ConditionNode,
    SwitchNode,
    SetNode,
    DelayNode,
    StopNode,
    HttpRequestNode,
)
