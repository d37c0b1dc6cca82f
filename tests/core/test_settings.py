"""Settings read SOCIALFLOW_<AREA>_<FIELD> variables and refuse placeholders in production."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from socialflow.core.settings import Settings


def test_nested_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SOCIALFLOW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SOCIALFLOW_HTTP_ALLOWED_HOSTS", '["intranet.example", "10.1.0.0/16"]')
    monkeypatch.setenv("SOCIALFLOW_ENGINE_MAX_RECORDED_BYTES", "2048")
    monkeypatch.setenv("SOCIALFLOW_PREFECT_API_URL", "http://127.0.0.1:4200/api")
    settings = Settings()
    assert settings.data_dir == tmp_path
    assert settings.http.allowed_hosts == ["intranet.example", "10.1.0.0/16"]
    assert settings.engine.max_recorded_bytes == 2048
    assert settings.prefect.api_url == "http://127.0.0.1:4200/api"
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path.resolve() / 'socialflow.db'}"


def test_database_url_wins_over_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIALFLOW_DATABASE_URL", "postgresql+psycopg://u@db/socialflow")
    assert Settings().database_url == "postgresql+psycopg://u@db/socialflow"


def test_production_refuses_the_placeholder_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIALFLOW_ENVIRONMENT", "production")
    monkeypatch.delenv("SOCIALFLOW_SECRET_KEY", raising=False)
    with pytest.raises(ValidationError, match="SOCIALFLOW_SECRET_KEY"):
        Settings()
    monkeypatch.setenv("SOCIALFLOW_SECRET_KEY", "a-real-secret-of-some-length-at-least-32")
    with pytest.raises(ValidationError, match="SOCIALFLOW_SECURITY_MASTER_KEYS"):
        Settings()
    monkeypatch.setenv("SOCIALFLOW_SECURITY_MASTER_KEYS", '["k1:' + "A" * 43 + '="]')
    assert Settings().environment == "production"


def test_bad_values_name_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIALFLOW_ENGINE_MAX_RECORDED_BYTES", "10")
    with pytest.raises(ValidationError, match="max_recorded_bytes"):
        Settings()
