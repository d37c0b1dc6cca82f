"""Refusal thresholds per embedder: the calibrated default, the fallback, the base's lookup."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from socialflow.core.errors import NotFoundError
from socialflow.core.settings import Settings
from socialflow.knowledge import (
    CALIBRATIONS,
    UNCALIBRATED_THRESHOLD,
    MiniLMEmbeddings,
    WorkspaceRetriever,
    refusal_threshold,
)
from tests.knowledge.test_retriever import add_base


def test_the_built_in_embedder_has_a_measured_threshold() -> None:
    minilm = MiniLMEmbeddings.shared()
    calibration = CALIBRATIONS[(minilm.provider, minilm.model_name)]
    assert 0 < calibration.threshold < 1
    # what the bench measured on the held-out questions: the 95 % goal and most refused
    assert calibration.answered >= 0.9 and 0 < calibration.refused <= 1
    assert "bench/refusal.py" in calibration.measured_on
    assert refusal_threshold(minilm.provider, minilm.model_name) == calibration.threshold


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "text-embedding-3-small"),
        ("minilm", "all-MiniLM-L12-v2"),  # same provider, another model: not calibrated
        ("", ""),
        ("minilm' OR 1=1 --", "x" * 10_000),
    ],
)
def test_an_uncalibrated_embedder_keeps_the_former_threshold(provider: str, model: str) -> None:
    assert refusal_threshold(provider, model) == UNCALIBRATED_THRESHOLD


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(knowledge={"store_path": str(tmp_path / "stores")})


async def test_the_retriever_gives_the_threshold_of_the_base_s_embedder(
    db: Any, settings: Settings
) -> None:
    workspace = uuid.uuid4()
    minilm_base = await add_base(db, workspace)
    remote = await add_base(
        db,
        workspace,
        name="Remote",
        embedder_provider="openai",
        embedder_model="text-embedding-3-small",
        embedder_dimension=1536,
    )
    retriever = WorkspaceRetriever(db, settings, workspace)
    expected = refusal_threshold("minilm", "all-MiniLM-L6-v2")
    assert await retriever.refusal_threshold(minilm_base.id) == expected
    assert await retriever.refusal_threshold(remote.id) == UNCALIBRATED_THRESHOLD


async def test_another_workspace_s_base_is_not_found(db: Any, settings: Settings) -> None:
    theirs = await add_base(db, uuid.uuid4())
    retriever = WorkspaceRetriever(db, settings, uuid.uuid4())
    with pytest.raises(NotFoundError):
        await retriever.refusal_threshold(theirs.id)
    with pytest.raises(NotFoundError):
        await retriever.refusal_threshold(uuid.uuid4())
