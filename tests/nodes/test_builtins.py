"""Built-in logic and data nodes, run directly through a NodeContext."""

from __future__ import annotations

import pytest

from socialflow.core.errors import UserError
from socialflow.core.settings import Settings
from socialflow.nodes.builtins import (
    ConditionNode,
    DelayNode,
    ManualTriggerNode,
    ScheduleTriggerNode,
    SetNode,
    StopNode,
    SwitchNode,
)
from tests.fixtures.context import make_context


async def test_condition_routes_input_to_one_port() -> None:
    node = ConditionNode(ConditionNode.Config(expression="trigger.n > 2"))
    assert await node.run(make_context(trigger={"n": 3}), **{"in": "x"}) == {"true": "x"}
    assert await node.run(make_context(trigger={"n": 1}), **{"in": "x"}) == {"false": "x"}


async def test_switch_has_a_port_per_case_and_a_default() -> None:
    config = SwitchNode.Config(
        value="trigger.kind",
        cases=[{"port": "comment", "equals": "comment"}, {"port": "dm", "equals": "dm"}],
    )
    assert [p.name for p in SwitchNode.output_ports(config)] == ["comment", "dm", "default"]
    node = SwitchNode(config)
    assert await node.run(make_context(trigger={"kind": "dm"}), **{"in": 1}) == {"dm": 1}
    assert await node.run(make_context(trigger={"kind": "x"}), **{"in": 1}) == {"default": 1}


def test_switch_refuses_duplicate_ports() -> None:
    with pytest.raises(ValueError, match="unique"):
        SwitchNode.Config(value="1", cases=[{"port": "a", "equals": 1}, {"port": "a", "equals": 2}])


async def test_set_builds_typed_values_from_templates() -> None:
    node = SetNode(
        SetNode.Config(values={"greeting": "Hi {{ trigger.user }}", "count": "{{ trigger.n * 2 }}"})
    )
    result = await node.run(make_context(trigger={"user": "ana", "n": 4}))
    assert result == {"out": {"greeting": "Hi ana", "count": 8}}


async def test_set_can_start_from_its_inputs() -> None:
    node = SetNode(SetNode.Config(values={"b": "2"}, include_input=True))
    result = await node.run(make_context(), **{"in": [{"a": 1}, {"c": 3}]})
    assert result == {"out": {"a": 1, "c": 3, "b": "2"}}


async def test_delay_waits_and_passes_input_on() -> None:
    node = DelayNode(DelayNode.Config(seconds=0.01))
    assert await node.run(make_context(), **{"in": 5}) == {"out": 5}


async def test_delay_longer_than_the_server_allows_is_refused() -> None:
    settings = Settings(engine={"max_delay_seconds": 1})
    node = DelayNode(DelayNode.Config(seconds=5))
    with pytest.raises(UserError, match="longer than this server allows"):
        await node.run(make_context(settings=settings))


async def test_stop_ends_quietly_or_fails_with_the_message() -> None:
    assert await StopNode(StopNode.Config()).run(make_context()) == {}
    node = StopNode(StopNode.Config(outcome="error", message="no stock for {{ trigger.sku }}"))
    with pytest.raises(UserError, match="no stock for mug"):
        await node.run(make_context(trigger={"sku": "mug"}))


async def test_triggers_pass_the_payload_on() -> None:
    node = ManualTriggerNode(ManualTriggerNode.Config())
    assert await node.run(make_context(trigger={"a": 1})) == {"event": {"a": 1}}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "exactly one"),
        ({"cron": "* * * * *", "interval_seconds": 60}, "exactly one"),
        ({"cron": "every day"}, "not a valid cron"),
        ({"cron": "0 9 * * *", "timezone": "Mars/Base"}, "IANA"),
        ({"interval_seconds": 1}, "greater than or equal to 5"),
    ],
)
def test_schedule_config_is_checked(config: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ScheduleTriggerNode.Config.model_validate(config)


def test_schedule_accepts_cron_with_timezone() -> None:
    config = ScheduleTriggerNode.Config(cron="0 9 * * 1-5", timezone="Europe/Berlin")
    assert config.interval is None
