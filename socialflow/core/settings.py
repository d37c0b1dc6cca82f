"""Settings for every Socialflow process, read from ``SOCIALFLOW_<AREA>_<FIELD>`` variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "ApiSettings",
    "AuthSettings",
    "DatabaseSettings",
    "EngineSettings",
    "HttpSettings",
    "LoggingSettings",
    "OAuthProvider",
    "PrefectSettings",
    "RetentionSettings",
    "SecuritySettings",
    "Settings",
    "get_settings",
]

_PLACEHOLDER_SECRET = "change-me-in-production"


class DatabaseSettings(BaseModel):
    """Where the application database lives."""

    url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL: sqlite+aiosqlite:///path.db or postgresql+psycopg://user@host/db. "
            "Empty means a SQLite file in the data directory."
        ),
    )
    echo: bool = Field(default=False, description="Log every SQL statement (debugging only).")
    pool_size: int = Field(default=10, ge=1, le=200, description="PostgreSQL pool size.")


class PrefectSettings(BaseModel):
    """How Socialflow reaches Prefect, and how `socialflow up` starts it."""

    api_url: str | None = Field(
        default=None,
        description=(
            "Prefect API URL, e.g. http://127.0.0.1:4200/api. Empty: use PREFECT_API_URL if set, "
            "else Prefect's ephemeral mode (development only)."
        ),
    )
    server_host: str = Field(default="127.0.0.1", description="Host `socialflow up` binds to.")
    server_port: int = Field(default=4200, ge=1, le=65535, description="Prefect server port.")
    ui_url: str | None = Field(
        default=None, description="Public URL of the Prefect UI, for links to runs."
    )


class HttpSettings(BaseModel):
    """Limits of the HTTP request node and every other user-directed outbound call."""

    allowed_hosts: list[str] = Field(
        default_factory=list,
        description=(
            "Hosts the HTTP node may reach even though they resolve to private, loopback or "
            "link-local addresses: host names, IP addresses or CIDR ranges. Admins only."
        ),
    )
    max_redirects: int = Field(default=5, ge=0, le=20, description="Redirects followed at most.")
    max_response_bytes: int = Field(
        default=5_000_000, ge=1024, description="Responses larger than this are refused."
    )
    max_timeout_seconds: float = Field(
        default=120.0, gt=0, description="Upper bound for a node's configured HTTP timeout."
    )


class EngineSettings(BaseModel):
    """How graphs run."""

    max_recorded_bytes: int = Field(
        default=64_000,
        ge=256,
        description="Node inputs and outputs larger than this (as JSON) are stored truncated.",
    )
    default_node_timeout_seconds: float = Field(
        default=300.0, gt=0, description="Timeout of a node that sets none."
    )
    max_delay_seconds: float = Field(
        default=3600.0, gt=0, description="Longest wait a delay node may hold a run."
    )


class OAuthProvider(BaseModel):
    """One OAuth2 / OpenID Connect login provider."""

    kind: Literal["github", "google", "oidc"] = Field(description="Provider type.")
    client_id: str = Field(min_length=1, description="OAuth client id.")
    client_secret: str = Field(min_length=1, description="OAuth client secret.")
    discovery_url: str | None = Field(
        default=None,
        description="OpenID Connect discovery document URL (…/.well-known/openid-configuration).",
    )
    title: str | None = Field(default=None, description="Button label; the name when empty.")
    trust_email: bool = Field(
        default=False,
        description=(
            "The provider verifies email addresses: a sign-in there may join an existing "
            "account with the same email. Leave off unless the provider guarantees it."
        ),
    )

    @model_validator(mode="after")
    def _oidc_needs_discovery(self) -> OAuthProvider:
        if self.kind == "oidc" and not self.discovery_url:
            msg = "an oidc provider needs discovery_url"
            raise ValueError(msg)
        return self


class ApiSettings(BaseModel):
    """The HTTP service."""

    host: str = Field(
        default="127.0.0.1", description="Interface `socialflow up` binds the API to."
    )
    port: int = Field(default=8000, ge=1, le=65535, description="API port.")
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="URL users reach the app at; links in emails and OAuth redirects use it.",
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed to call the API from a browser."
    )
    max_body_bytes: int = Field(
        default=1_000_000, ge=1024, description="Largest JSON request body accepted."
    )


class AuthSettings(BaseModel):
    """Sign-in: sessions, tokens, OAuth providers, rate limits."""

    token_lifetime_seconds: int = Field(
        default=7 * 86400, ge=60, description="Lifetime of session cookies and bearer tokens."
    )
    cookie_secure: bool | None = Field(
        default=None, description="Mark cookies Secure; default: when public_url is https."
    )
    oauth_providers: dict[str, OAuthProvider] = Field(
        default_factory=dict,
        description='Login providers by name, e.g. {"github": {"kind": "github", ...}}.',
    )
    login_attempts_per_account: int = Field(
        default=10, ge=1, description="Failed logins allowed per account per window."
    )
    login_attempts_per_ip: int = Field(
        default=50, ge=1, description="Login attempts allowed per client address per window."
    )
    login_window_seconds: int = Field(
        default=300, ge=1, description="The rate-limit window for logins."
    )


class SecuritySettings(BaseModel):
    """Encryption of secrets at rest."""

    master_keys: list[str] = Field(
        default_factory=list,
        description=(
            "Master keys as 'id:base64(32 bytes)'; the first wraps new data keys, the others "
            "still unwrap old ones until `socialflow credentials rotate-key` re-wraps them. "
            "Empty: a key derived from SOCIALFLOW_SECRET_KEY (development only)."
        ),
    )


class LoggingSettings(BaseModel):
    """Log output."""

    level: str = Field(default="INFO", description="Root log level.")
    json_output: bool = Field(default=False, description="One JSON object per line.")


class RetentionSettings(BaseModel):
    """How long history is kept."""

    execution_days: int = Field(
        default=30, ge=1, description="Executions older than this are pruned."
    )


class InstagramSettings(BaseModel):
    """Meta app, webhooks and the Graph API."""


class KnowledgeSettings(BaseModel):
    """Object storage, embeddings and vector stores for knowledge bases, and the AI nodes."""


class Settings(BaseSettings):
    """Every setting of a Socialflow process.

    Nested areas read ``SOCIALFLOW_<AREA>_<FIELD>``, e.g. ``SOCIALFLOW_DATABASE_URL``.
    """

    model_config = SettingsConfigDict(
        env_prefix="SOCIALFLOW_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        env_file=".env",
        extra="ignore",
    )

    environment: Literal["development", "test", "production"] = Field(
        default="development", description="Production refuses placeholder secrets."
    )
    data_dir: Path = Field(
        default=Path(".socialflow"),
        description="Where the embedded stack keeps its SQLite files, uploads and Prefect home.",
    )
    secret_key: str = Field(
        default=_PLACEHOLDER_SECRET,
        min_length=16,
        description="Signs tokens and wraps encryption keys. Must be set in production.",
    )
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    prefect: PrefectSettings = Field(default_factory=PrefectSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    retention: RetentionSettings = Field(default_factory=lambda: RetentionSettings())
    instagram: InstagramSettings = Field(default_factory=InstagramSettings)
    knowledge: KnowledgeSettings = Field(default_factory=KnowledgeSettings)

    @model_validator(mode="after")
    def _refuse_placeholders_in_production(self) -> Settings:
        if self.environment == "production" and self.secret_key == _PLACEHOLDER_SECRET:
            msg = "SOCIALFLOW_SECRET_KEY must be set to a real secret when environment=production"
            raise ValueError(msg)
        if self.environment == "production" and not self.security.master_keys:
            msg = "SOCIALFLOW_SECURITY_MASTER_KEYS must be set when environment=production"
            raise ValueError(msg)
        return self

    @property
    def database_url(self) -> str:
        """The configured database URL, or the embedded SQLite file in the data directory."""
        if self.database.url:
            return self.database.url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'socialflow.db').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings of this process, read once from the environment."""
    return Settings()
