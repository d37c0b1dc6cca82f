"""Knowledge test fixtures: the built-in MiniLM embedder, loaded once per session."""

from __future__ import annotations

import pytest

from socialflow.knowledge import MiniLMEmbeddings


@pytest.fixture(scope="session")
def minilm() -> MiniLMEmbeddings:
    """all-MiniLM-L6-v2 from the packaged weights (numpy, no torch)."""
    return MiniLMEmbeddings.shared()
