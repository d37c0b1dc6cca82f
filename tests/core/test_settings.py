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


def test_the_databases_of_the_app_and_of_prefects_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SOCIALFLOW_DATABASE_URL", raising=False)
    monkeypatch.delenv("SOCIALFLOW_PREFECT_DATABASE_URL", raising=False)
    monkeypatch.setenv("SOCIALFLOW_DATA_DIR", str(tmp_path))
    # before `socialflow up` made the embedded cluster: SQLite for both, as before
    assert Settings().database_url.startswith("sqlite+aiosqlite:///")
    assert Settings().prefect_database_url is None
    # once it exists in the data directory, every process of that directory uses it
    (tmp_path / "postgres").mkdir()
    (tmp_path / "postgres" / "PG_VERSION").write_text("18\n")
    settings = Settings()
    assert settings.embedded_postgres
    assert settings.database_url.startswith("postgresql+psycopg://postgres@/socialflow?host=/")
    assert settings.prefect_database_url == settings.database_url.replace(
        "+psycopg", "+asyncpg"
    ).replace("/socialflow?", "/prefect?")
    # SQLite stays one URL away, and Prefect's server stays on SQLite with it
    monkeypatch.setenv("SOCIALFLOW_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/app.db")
    assert not Settings().embedded_postgres
    assert Settings().prefect_database_url is None
    # a PostgreSQL server: Prefect's database beside the app's, password and options kept
    monkeypatch.setenv(
        "SOCIALFLOW_DATABASE_URL", "postgresql+psycopg://sf:s%40cret@db:5433/app?sslmode=require"
    )
    assert Settings().prefect_database_url == (
        "postgresql+asyncpg://sf:s%40cret@db:5433/prefect?sslmode=require"
    )
    monkeypatch.setenv("SOCIALFLOW_PREFECT_DATABASE_URL", "postgresql+asyncpg://p@other/pf")
    assert Settings().prefect_database_url == "postgresql+asyncpg://p@other/pf"
    monkeypatch.setenv("SOCIALFLOW_PREFECT_DATABASE_URL", "mysql://p@other/pf")
    with pytest.raises(ValidationError, match=r"prefect\.database_url: Prefect's server takes"):
        Settings()


def test_the_public_url_follows_the_api_port_unless_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SOCIALFLOW_API_PUBLIC_URL", raising=False)
    monkeypatch.setenv("SOCIALFLOW_API_PORT", "8123")
    assert Settings().api.public_url == "http://127.0.0.1:8123"
    monkeypatch.setenv("SOCIALFLOW_API_HOST", "0.0.0.0")
    assert Settings().api.public_url == "http://127.0.0.1:8123"
    monkeypatch.setenv("SOCIALFLOW_API_PUBLIC_URL", "https://sf.example.com/")
    assert Settings().api.public_url == "https://sf.example.com"
    for bad in (
        "javascript:alert(1)",
        "ftp://sf.example.com",
        "https://",
        "sf.example.com",
        "https://sf.example.com/?next=//evil.example",
        "https://sf.example.com/#x",
        "https://user:pw@sf.example.com",
    ):
        monkeypatch.setenv("SOCIALFLOW_API_PUBLIC_URL", bad)
        with pytest.raises(ValidationError, match="public_url: "):
            Settings()


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
