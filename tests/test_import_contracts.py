"""The import contracts of pyproject.toml (``lint-imports``, run by ``make lint``): the tree keeps
them, and each one breaks on the import it exists to refuse."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

#: a file planted in a copy of the tree -> (the contract it must break, what the report names)
VIOLATIONS: dict[str, tuple[str, str, str]] = {
    # the API reaching into the engine's private worker module
    "socialflow/api/probe_private.py": (
        "from socialflow.orchestration._worker import Worker\n",
        "A private (_) module is imported only from within its own package",
        "socialflow.api.probe_private -> socialflow.orchestration._worker",
    ),
    # a test outside tests/knowledge/ reaching into knowledge's privates
    "tests/security/test_probe_private.py": (
        "from socialflow.knowledge._ingest import IngestContext\n",
        "A private (_) module is imported only from within its own package",
        "tests.security.test_probe_private -> socialflow.knowledge._ingest",
    ),
    # the kernel pointing up at the API
    "socialflow/core/probe_layers.py": (
        "import socialflow.api.models\n",
        "Layers: api -> orchestration -> nodes -> instagram | knowledge -> core",
        "socialflow.core.probe_layers -> socialflow.api.models",
    ),
    # the two middle packages must stay independent of each other
    "socialflow/instagram/probe_sibling.py": (
        "from socialflow.knowledge import Document\n",
        "Layers: api -> orchestration -> nodes -> instagram | knowledge -> core",
        "socialflow.instagram.probe_sibling -> socialflow.knowledge",
    ),
    # a new top-level module that no layer names
    "socialflow/probe_unplaced.py": (
        '"""Nothing."""\n',
        "Layers: api -> orchestration -> nodes -> instagram | knowledge -> core",
        "socialflow.probe_unplaced",
    ),
    "socialflow/orchestration/probe_tests.py": (
        "from tests.fixtures.ports import free_port\n",
        "The product imports neither its tests nor its benchmarks",
        "socialflow.orchestration.probe_tests -> tests.fixtures.ports",
    ),
    # the product reaching for a testing stand-in
    "socialflow/instagram/probe_testing.py": (
        "from socialflow.testing.graph_api_emulator import GraphEmulator\n",
        "The product never imports its testing stand-ins (socialflow.testing)",
        "socialflow.instagram.probe_testing -> socialflow.testing.graph_api_emulator",
    ),
    "socialflow/nodes/probe_prefect.py": (
        "from prefect import flow\n",
        "Nodes know neither Prefect, FastAPI nor the database",
        "socialflow.nodes.probe_prefect -> prefect",
    ),
    "socialflow/nodes/probe_db.py": (
        "from socialflow.core.db import Database\n",
        "Nodes know neither Prefect, FastAPI nor the database",
        "socialflow.nodes.probe_db -> socialflow.core.db",
    ),
    "socialflow/orchestration/probe_http.py": (
        "from fastapi import APIRouter\n",
        "Only the API (and the CLI that serves it) knows FastAPI",
        "socialflow.orchestration.probe_http -> fastapi",
    ),
    "socialflow/core/probe_prefect.py": (
        "import prefect\n",
        "The shared kernel knows no Prefect",
        "socialflow.core.probe_prefect -> prefect",
    ),
}

#: imports the contracts allow, planted beside the violations
ALLOWED: dict[str, str] = {
    # a test under tests/orchestration/ may exercise an internal of socialflow.orchestration
    "tests/orchestration/test_probe_internal.py": (
        "from socialflow.orchestration._worker import Worker\n"
    ),
    # inside a package, modules import their siblings' private modules freely
    "socialflow/orchestration/probe_sibling.py": (
        "from socialflow.orchestration._worker import Worker\n"
    ),
}


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=cwd,
        # wide enough that no reported import is wrapped across lines
        env={**os.environ, "COLUMNS": "400", "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def broken_sections(report: str) -> dict[str, str]:
    """The text under each broken contract's heading in the report."""
    _, _, broken = report.partition("Broken contracts")
    sections: dict[str, str] = {}
    lines = broken.splitlines()
    name = None
    for index, line in enumerate(lines):
        if index + 1 < len(lines) and set(lines[index + 1].strip()) == {"-"} and line.strip():
            name = line.strip()
            sections[name] = ""
        elif name is not None:
            sections[name] += line + "\n"
    return sections


def test_the_tree_keeps_every_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.fixture(scope="module")
def violating_report(tmp_path_factory: pytest.TempPathFactory) -> str:
    tree = tmp_path_factory.mktemp("tree")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("socialflow", "tests", "bench"):
        shutil.copytree(ROOT / folder, tree / folder, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    for path, (source, _, _) in VIOLATIONS.items():
        (tree / path).write_text(source)
    for path, source in ALLOWED.items():
        (tree / path).write_text(source)
    result = lint_imports(tree)
    assert result.returncode == 1, result.stdout + result.stderr
    return result.stdout


@pytest.mark.parametrize("path", sorted(VIOLATIONS))
def test_each_contract_breaks_on_the_import_it_refuses(violating_report: str, path: str) -> None:
    _, contract, named = VIOLATIONS[path]
    sections = broken_sections(violating_report)
    assert contract in sections, violating_report
    assert named in sections[contract], sections[contract]


def test_mirrored_tests_and_siblings_may_import_private_modules(violating_report: str) -> None:
    for path in ALLOWED:
        module = path.removesuffix(".py").replace("/", ".")
        assert f"{module} ->" not in violating_report, violating_report
