"""The package's public names load their modules on first use, and each is what its module
defines."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import socialflow.instagram as instagram


def test_every_public_name_resolves_to_its_module_s_object() -> None:
    assert sorted(instagram._MODULES) == sorted(instagram.__all__)
    for name, module in instagram._MODULES.items():
        defined = getattr(importlib.import_module(f"socialflow.instagram.{module}"), name)
        assert getattr(instagram, name) is defined, name
    assert set(instagram.__all__) <= set(dir(instagram))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = instagram.Nope  # type: ignore[attr-defined]


def test_signing_a_webhook_loads_neither_the_orm_nor_the_graph_client() -> None:
    probe = (
        "import sys\n"
        "from socialflow.instagram import build_payload, encode_body, signed_headers\n"
        "signed_headers(encode_body(build_payload('comment', 'price?')), b'secret')\n"
        "print(sorted(m for m in sys.modules if m.startswith(('sqlalchemy', 'httpx'))))\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert found.stdout.strip() == "[]"
