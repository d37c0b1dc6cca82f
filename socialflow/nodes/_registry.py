"""The node registry: built-in kinds plus plugins from the ``socialflow.nodes`` entry points."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from socialflow.core.errors import NotFoundError
from socialflow.core.logging import get_logger
from socialflow.nodes._base import BaseNode

__all__ = ["ENTRY_POINT_GROUP", "NodeRegistry", "default_registry"]

ENTRY_POINT_GROUP = "socialflow.nodes"
_log = get_logger(__name__)


class NodeRegistry:
    """Node kinds by ``(kind, version)``; every version of a kind stays loadable."""

    def __init__(self, nodes: Iterable[type[BaseNode]] = ()) -> None:
        self._kinds: dict[str, dict[int, type[BaseNode]]] = {}
        self._sources: dict[tuple[str, int], str] = {}
        for node in nodes:
            self.register(node)

    def register(self, node: type[BaseNode], *, source: str = "builtin") -> None:
        """Add a node class.

        Raises:
            ValueError: Not a node class, or the same ``(kind, version)`` is already taken.
        """
        if not (isinstance(node, type) and issubclass(node, BaseNode)):
            msg = f"{node!r} is not a BaseNode subclass"
            raise TypeError(msg)
        versions = self._kinds.setdefault(node.kind, {})
        if node.version in versions and versions[node.version] is not node:
            msg = f"node kind {node.kind!r} version {node.version} is registered twice"
            raise ValueError(msg)
        versions[node.version] = node
        self._sources[(node.kind, node.version)] = source

    def get(self, kind: str, version: int | None = None) -> type[BaseNode]:
        """The class for ``kind`` at ``version`` (the newest when ``None``).

        Raises:
            NotFoundError: No such kind, or no such version of it.
        """
        versions = self._kinds.get(kind)
        if not versions:
            msg = f"unknown node kind {kind!r}"
            raise NotFoundError(msg, code="unknown_node_kind")
        if version is None:
            return versions[max(versions)]
        if version not in versions:
            known = ", ".join(str(v) for v in sorted(versions))
            msg = f"node kind {kind!r} has no version {version} (known: {known})"
            raise NotFoundError(msg, code="unknown_node_version")
        return versions[version]

    def source(self, node: type[BaseNode]) -> str:
        """Where a kind came from: ``builtin`` or ``plugin:<entry point name>``."""
        return self._sources[(node.kind, node.version)]

    def __iter__(self) -> Iterator[type[BaseNode]]:
        for kind in sorted(self._kinds):
            for version in sorted(self._kinds[kind]):
                yield self._kinds[kind][version]

    def __contains__(self, kind: object) -> bool:
        return kind in self._kinds

    def __len__(self) -> int:
        return sum(len(v) for v in self._kinds.values())

    def load_plugins(self, eps: Iterable[EntryPoint] | None = None) -> list[str]:
        """Register every node kind published under the ``socialflow.nodes`` entry points.

        An entry point may name a node class, an iterable of them, or a callable returning
        either. A plugin that fails to import or register is logged and skipped, never fatal.

        Returns:
            The names of the entry points that loaded.
        """
        loaded: list[str] = []
        for ep in entry_points(group=ENTRY_POINT_GROUP) if eps is None else eps:
            try:
                self._register_plugin(ep)
            except Exception as exc:
                _log.warning(
                    "node plugin skipped",
                    plugin=ep.name,
                    target=ep.value,
                    error=f"{type(exc).__name__}: {exc}",
                )
                continue
            loaded.append(ep.name)
        return loaded

    def _register_plugin(self, ep: EntryPoint) -> None:
        target: Any = ep.load()
        if not isinstance(target, type) and callable(target):
            target = target()
        found: list[type[BaseNode]] = [target] if isinstance(target, type) else list(target)
        staged = NodeRegistry()
        for node in found:
            staged.register(node)
            if node.kind in self and node.version in self._kinds[node.kind]:
                msg = f"kind {node.kind!r} v{node.version} is already registered"
                raise ValueError(msg)
        for node in found:
            self.register(node, source=f"plugin:{ep.name}")


_default: NodeRegistry | None = None


def default_registry() -> NodeRegistry:
    """The process-wide registry: built-ins and installed plugins, loaded once."""
    global _default
    if _default is None:
        from socialflow.nodes.builtins import BUILTIN_NODES

        registry = NodeRegistry(BUILTIN_NODES)
        registry.load_plugins()
        _default = registry
    return _default
