"""Plugins register through the ``socialflow.nodes`` entry points; broken ones are skipped."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from socialflow.core.errors import NotFoundError
from socialflow.nodes import NodeRegistry
from socialflow.nodes.builtins import BUILTIN_NODES
from socialflow.orchestration import NodeType, sync_node_types

PLUGIN = '''
from typing import Any
from pydantic import Field
from socialflow.nodes import BaseNode, NodeConfig, NodeContext

class ShoutNode(BaseNode):
    """Upper-cases a text."""

    kind = "acme.shout"
    title = "Shout"
    category = "data"

    class Config(NodeConfig):
        text: str = Field(description="What to shout.")

    async def run(self, ctx: NodeContext, *args: Any, **inputs: Any) -> dict[str, Any]:
        return {"out": self.config.text.upper()}
'''


@pytest.fixture
def installed_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two installed distributions: one good plugin, one that raises on import."""
    (tmp_path / "acme_nodes.py").write_text(PLUGIN)
    (tmp_path / "acme_broken.py").write_text("raise RuntimeError('plugin bug at import')\n")
    for name, target in (
        ("acme-nodes", "good = acme_nodes:ShoutNode"),
        ("acme-broken", "bad = acme_broken:NODES"),
    ):
        info = tmp_path / f"{name.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[socialflow.nodes]\n{target}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_good_plugin_loads_and_broken_one_is_logged_and_skipped(
    installed_plugins: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = NodeRegistry(BUILTIN_NODES)
    with caplog.at_level(logging.WARNING):
        loaded = registry.load_plugins()
    assert "good" in loaded
    assert "bad" not in loaded
    shout = registry.get("acme.shout")
    assert registry.source(shout) == "plugin:good"
    skipped = [r for r in caplog.records if "node plugin skipped" in str(r.msg)]
    assert len(skipped) == 1
    assert "plugin bug at import" in str(skipped[0].msg)
    assert "bad" in str(skipped[0].msg)


def test_plugin_cannot_take_over_a_builtin_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "evil_nodes.py").write_text(
        "from socialflow.nodes.builtins import ConditionNode\n"
        "class Fake(ConditionNode):\n    pass\n"
    )
    info = tmp_path / "evil-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[socialflow.nodes]\nevil = evil_nodes:Fake\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = NodeRegistry(BUILTIN_NODES)
    with caplog.at_level(logging.WARNING):
        assert "evil" not in registry.load_plugins()
    assert registry.source(registry.get("logic.condition")) == "builtin"


def test_unknown_kind_and_version_are_not_found() -> None:
    registry = NodeRegistry(BUILTIN_NODES)
    with pytest.raises(NotFoundError) as kind:
        registry.get("nope")
    assert kind.value.code == "unknown_node_kind"
    with pytest.raises(NotFoundError) as version:
        registry.get("logic.condition", 9)
    assert version.value.code == "unknown_node_version"


async def test_node_type_table_mirrors_registry_with_plugins(
    installed_plugins: Path, db: Any
) -> None:
    registry = NodeRegistry(BUILTIN_NODES)
    registry.load_plugins()
    async with db.session() as session:
        count = await sync_node_types(session, registry)
    assert count == len(BUILTIN_NODES) + 1
    async with db.session() as session:
        rows = {r.kind: r for r in await session.scalars(select(NodeType))}
    assert rows["acme.shout"].source == "plugin:good"
    assert rows["acme.shout"].available
    assert (
        rows["acme.shout"].spec["config_schema"]["properties"]["text"]["description"]
        == "What to shout."
    )
    assert rows["logic.condition"].category == "logic"

    # the plugin is uninstalled: its row stays for old graphs but is marked unavailable
    async with db.session() as session:
        await sync_node_types(session, NodeRegistry(BUILTIN_NODES))
    async with db.session() as session:
        row = await session.scalar(select(NodeType).where(NodeType.kind == "acme.shout"))
    assert row is not None and not row.available
