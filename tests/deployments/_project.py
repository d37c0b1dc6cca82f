"""Facts about the application the deployment files must agree with, read from the code."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from socialflow.core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENTS = ROOT / "deployments"
# third-party images configured through variables of their own
THIRD_PARTY_PREFIXES = ("POSTGRES_", "MINIO_", "REDISCLI_")


@lru_cache(maxsize=1)
def settings_env_names() -> frozenset[str]:
    """Every SOCIALFLOW_* variable Settings reads, derived from its fields (areas nest once)."""
    names: set[str] = set()
    prefix = str(Settings.model_config.get("env_prefix", ""))
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names.update(f"{prefix}{name}_{sub}".upper() for sub in annotation.model_fields)
        else:
            names.add(f"{prefix}{name}".upper())
    # variables prefect.yaml's steps read ("{{ $SOCIALFLOW_PROJECT_DIR }}")
    names.update(re.findall(r"\$(SOCIALFLOW_[A-Z0-9_]+)", (ROOT / "prefect.yaml").read_text()))
    return frozenset(names)


@lru_cache(maxsize=1)
def prefect_env_names() -> frozenset[str]:
    """Every PREFECT_* variable Prefect's settings read (prefixed names and their aliases)."""
    from prefect.settings.base import PrefectBaseSettings
    from prefect.settings.models.root import Settings as PrefectSettings

    names: set[str] = set()

    def walk(model: type[PrefectBaseSettings]) -> None:
        prefix = str(model.model_config.get("env_prefix", "PREFECT_"))
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, PrefectBaseSettings):
                walk(annotation)
                continue
            names.add(f"{prefix}{name}".upper())
            alias = field.validation_alias
            for choice in getattr(alias, "choices", ()):
                if isinstance(choice, str):
                    names.add(choice.upper())

    walk(PrefectSettings)
    # prefect-redis (the redis extra): the messaging connection, publisher and consumer
    from prefect_redis.client import RedisMessagingSettings
    from prefect_redis.messaging import (
        RedisMessagingConsumerSettings,
        RedisMessagingPublisherSettings,
    )

    for model in (
        RedisMessagingSettings,
        RedisMessagingPublisherSettings,
        RedisMessagingConsumerSettings,
    ):
        walk(model)
    return frozenset(names)


def unknown_env_names(names: Any) -> list[str]:
    """The names in ``names`` that no Socialflow setting, Prefect setting or known image reads."""
    valid = settings_env_names() | prefect_env_names()
    return sorted(
        name for name in names if name not in valid and not name.startswith(THIRD_PARTY_PREFIXES)
    )


@lru_cache(maxsize=1)
def app_paths() -> frozenset[str]:
    """Every path the API serves, from the real application's routes."""
    from socialflow.api.app import create_app

    settings = Settings(
        environment="test",
        secret_key="deployment-files-test-secret-long-enough",
        database={"url": "sqlite+aiosqlite:///:memory:"},
    )
    app = create_app(settings)
    paths: set[str] = set(app.openapi()["paths"])  # HTTP routes

    def walk(routes: Any, prefix: str) -> None:  # WebSocket routes too, through included routers
        for route in routes:
            if isinstance(getattr(route, "path", None), str):
                paths.add(prefix + route.path)
            inner = getattr(route, "original_router", None)
            if inner is not None:
                walk(inner.routes, prefix + str(route.include_context.prefix))

    walk(app.routes, "")
    return frozenset(paths)


def url_path(url: str) -> str:
    """The path of an http(s) URL: ``http://127.0.0.1:8000/readyz`` -> ``/readyz``."""
    match = re.match(r"https?://[^/]+(/[^?#]*)", url)
    assert match, f"not an http URL: {url}"
    return match.group(1)
