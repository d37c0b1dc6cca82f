"""Settings for every Socialflow process, read from ``SOCIALFLOW_<AREA>_<FIELD>`` variables."""

from __future__ import annotations

import ipaddress
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from socialflow.core.embedded_postgres import cluster_dir, embedded_url

__all__ = [
    "ApiSettings",
    "AuthSettings",
    "DatabaseSettings",
    "EngineSettings",
    "HttpSettings",
    "LLMPrice",
    "LoggingSettings",
    "OAuthProvider",
    "PrefectSettings",
    "PublishingSettings",
    "RetentionSettings",
    "SecuritySettings",
    "Settings",
    "generated_key_file",
    "get_settings",
    "secret_key_file",
]

#: Example values start with this (``change-me-in-production``, the compose example's
#: ``change-me-to-openssl-rand-hex-32``): published, so never a secret.
_PLACEHOLDER_PREFIX = "change-me"
#: Shortest secret key accepted outside development: 32 characters of ``openssl rand -hex 32``
#: or ``secrets.token_urlsafe`` carry at least 128 random bits.
MIN_SECRET_KEY_LENGTH = 32
#: Development keys set by hand may be shorter (a local stack only), never below this.
_MIN_DEVELOPMENT_KEY_LENGTH = 16
_SECRET_KEY_FILE = "secret_key"
_KEY_ADVICE = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"


class DatabaseSettings(BaseModel):
    """Where the application database lives."""

    url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL: sqlite+aiosqlite:///path.db or postgresql+psycopg://user@host/db. "
            "On PostgreSQL, Prefect's server (started by `socialflow up`) uses a database named "
            "prefect on the same server, created if missing. Empty: the embedded PostgreSQL "
            "`socialflow up` keeps in <data_dir>/postgres (a SQLite file in the data directory "
            "until that exists)."
        ),
    )
    echo: bool = Field(default=False, description="Log every SQL statement (debugging only).")
    pool_size: int = Field(default=10, ge=1, le=200, description="PostgreSQL pool size.")
    inbox_connections: int = Field(
        default=2,
        ge=1,
        le=16,
        description=(
            "PostgreSQL connections each API process keeps for storing webhook events, besides "
            "the pool: concurrent requests share commits on them (group commit)."
        ),
    )


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
    database_url: str | None = Field(
        default=None,
        description=(
            "Database of the Prefect server `socialflow up` starts (postgresql+asyncpg://… or "
            "sqlite+aiosqlite:///…). Empty: the database prefect on the application's "
            "PostgreSQL server, or SQLite in <data_dir>/prefect when the application is on "
            "SQLite."
        ),
    )

    @field_validator("database_url")
    @classmethod
    def _prefect_database_is_supported(cls, value: str | None) -> str | None:
        if value and not value.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
            msg = (
                "prefect.database_url: Prefect's server takes postgresql+asyncpg://… or "
                "sqlite+aiosqlite:///… URLs"
            )
            raise ValueError(msg)
        return value or None


class HttpSettings(BaseModel):
    """Limits of the HTTP request node and every other user-directed outbound call."""

    allowed_hosts: list[str] = Field(
        default_factory=list,
        description=(
            "Hosts that URLs set by workspaces (the HTTP node, credential base URLs and "
            "endpoints) may reach even though they are or resolve to private, loopback, "
            "link-local or other special-purpose addresses: host names (exact), IP addresses "
            'or CIDR ranges, e.g. ["127.0.0.1"] for a local Ollama. Operators only.'
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
    prefect_request_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description=(
            "A worker's longest wait for one answer from Prefect's API (Prefect's own default "
            "is 60 s): a request the server lost holds a run's slot no longer than this."
        ),
    )
    prefect_client_retries: int = Field(
        default=1,
        ge=0,
        le=10,
        description=(
            "Retries Prefect's client makes itself inside a worker (its backoff doubles from "
            "2 s, so its default of 5 can hold a slot a minute after the API is back); the "
            "worker retries a failed start itself with a backoff capped at a few seconds."
        ),
    )
    start_attempts: int = Field(
        default=8,
        ge=1,
        le=100,
        description=(
            "Tries a worker slot makes to start a run while Prefect's API fails (backoff with "
            "jitter, capped at 5 s), before it gives the execution back for a later claim."
        ),
    )
    event_runs_in_deployment: bool = Field(
        default=False,
        description=(
            "Create the flow runs of events from the flow's Prefect deployment, so Prefect's "
            "UI lists them under it (runs from schedules and the UI always are). Off by "
            "default: Prefect's server spends about twice the CPU on a run that belongs to a "
            "deployment (measured 363 vs 158 ms per 4-node run), which halves throughput on "
            "a small machine; event runs are tagged with workspace, flow and version instead."
        ),
    )
    max_retry_after_seconds: float = Field(
        default=900.0,
        ge=0,
        description=(
            "Longest wait before a node's retry when the upstream said how long to wait "
            "(Retry-After, Meta's estimated_time_to_regain_access); longer asks are cut to it."
        ),
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
        default="",
        description=(
            "URL users reach the app at (http or https, optionally with a path); links in "
            "emails, OAuth redirects and the webhook URLs of flows use it. Empty: "
            "http://<host>:<port> of this API (127.0.0.1 when it binds every interface)."
        ),
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed to call the API from a browser."
    )
    max_body_bytes: int = Field(
        default=1_000_000, ge=1024, description="Largest JSON request body accepted."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description=(
            "Addresses or CIDR ranges of the reverse proxies in front of the API, as JSON: "
            '["172.28.0.10"]. Only a request whose peer is one of them has its '
            "X-Forwarded-For and X-Forwarded-Proto believed (the client is the last address "
            "no trusted proxy added); anyone else's are ignored. Empty: none believed."
        ),
    )

    @model_validator(mode="after")
    def _public_url_names_this_api(self) -> ApiSettings:
        if not self.public_url:
            host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
            host = f"[{host}]" if ":" in host else host
            self.public_url = f"http://{host}:{self.port}"
            return self
        from urllib.parse import urlsplit

        parts = urlsplit(self.public_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            msg = (
                f"public_url: {self.public_url!r} is not an http(s) URL with a host, e.g. "
                "https://socialflow.example.com"
            )
            raise ValueError(msg)
        if parts.query or parts.fragment or parts.username or parts.password:
            msg = (
                "public_url: a query, fragment or user name is not allowed, only scheme://host/path"
            )
            raise ValueError(msg)
        self.public_url = self.public_url.rstrip("/")
        return self

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                network = ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError as exc:
                msg = (
                    f"trusted_proxies: {entry!r} is not an IP address or CIDR range; name the "
                    "proxies' own addresses, e.g. 172.28.0.10 or 10.0.0.0/8"
                )
                raise ValueError(msg) from exc
            if network.prefixlen == 0:
                # trusting every peer lets any client choose the address it is counted under
                msg = (
                    f"trusted_proxies: {entry!r} trusts every address; name the proxies' own "
                    "addresses or ranges"
                )
                raise ValueError(msg)
        return [entry.strip() for entry in value]


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
    inbox_days: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Dispatched or ignored inbox events (the event log) older than this are pruned; "
            "unset: as long as executions (execution_days), so every run keeps its event."
        ),
    )

    @property
    def event_days(self) -> int:
        """How long the event log keeps dispatched and ignored events."""
        return self.inbox_days if self.inbox_days is not None else self.execution_days

    ledger_days: int = Field(
        default=90,
        ge=1,
        description="Finished send-ledger rows (outbox_message) older than this are pruned.",
    )


class InstagramSettings(BaseModel):
    """Meta app, webhooks and the Graph API."""

    verify_token: SecretStr | None = Field(
        default=None,
        description=(
            "Verify Token typed into the App Dashboard's webhook settings; Meta's GET handshake "
            "must send it. Empty: every handshake is refused."
        ),
    )
    app_secrets: list[SecretStr] = Field(
        default_factory=list,
        description=(
            "Secrets webhook signatures are checked with, each tried in turn: the Meta App "
            "Secret and the Instagram App Secret. Empty: a secret derived from "
            "SOCIALFLOW_SECRET_KEY in development, every webhook refused otherwise."
        ),
    )
    allow_sha1_signature: bool = Field(
        default=False,
        description=(
            "Accept the legacy X-Hub-Signature (HMAC-SHA1) when X-Hub-Signature-256 is absent."
        ),
    )
    max_webhook_bytes: int = Field(
        default=8_000_000,
        ge=1024,
        description="Largest webhook body accepted (Meta batches up to 1,000 updates).",
    )
    api_version: str = Field(
        default="v25.0",
        pattern=r"^v\d+\.\d+$",
        description="Graph API version used on both hosts, e.g. v25.0.",
    )
    graph_instagram_url: str = Field(
        default="https://graph.instagram.com",
        description="Graph host of accounts connected with Instagram Login.",
    )
    graph_facebook_url: str = Field(
        default="https://graph.facebook.com",
        description="Graph host of accounts connected with Facebook Login for Business.",
    )
    oauth_authorize_url: str = Field(
        default="https://www.instagram.com/oauth/authorize",
        description="Instagram Login authorization page the connect flow redirects to.",
    )
    oauth_token_url: str = Field(
        default="https://api.instagram.com/oauth/access_token",
        description="Endpoint exchanging an authorization code for a short-lived token.",
    )
    app_id: str | None = Field(
        default=None, description="Instagram App ID (client_id of Instagram Login)."
    )
    app_secret: SecretStr | None = Field(
        default=None, description="Instagram App Secret used for the code and token exchange."
    )
    oauth_redirect_url: str | None = Field(
        default=None,
        description=(
            "Public URL of the OAuth callback; empty: the API's own "
            "/api/instagram/oauth/callback on the request's host."
        ),
    )
    facebook_app_id: str | None = Field(
        default=None, description="Meta App ID (client_id of Facebook Login for Business)."
    )
    facebook_app_secret: SecretStr | None = Field(
        default=None, description="Meta App Secret used for Facebook Login's token exchanges."
    )
    facebook_dialog_url: str = Field(
        default="https://www.facebook.com",
        description="Host of Facebook Login's dialog; the path is /<api_version>/dialog/oauth.",
    )
    facebook_config_id: str | None = Field(
        default=None,
        description=(
            "Facebook Login for Business configuration id; when set it is sent as config_id "
            "and the configuration decides the permissions (scope is not sent)."
        ),
    )
    facebook_pkce: bool = Field(
        default=True,
        description=(
            "Send a PKCE code_challenge (S256) to Facebook Login and the code_verifier with the "
            "code exchange (Meta documents PKCE for manually built login flows)."
        ),
    )
    facebook_redirect_url: str | None = Field(
        default=None,
        description=(
            "Public URL of the Facebook Login callback; empty: the API's own "
            "/api/instagram/oauth/facebook/callback on the request's host."
        ),
    )
    request_timeout_seconds: float = Field(
        default=20.0, gt=0, le=120, description="Timeout of one Graph API request."
    )
    private_reply_limit: int = Field(
        default=750, ge=1, description="Private replies per account per pacing window."
    )
    private_reply_window_seconds: float = Field(
        default=3600.0, gt=0, description="Pacing window of private replies (Meta: 1 hour)."
    )
    send_limit: int = Field(
        default=100, ge=1, description="DMs and comment replies per account per send window."
    )
    send_window_seconds: float = Field(
        default=1.0, gt=0, description="Pacing window of DMs and comment replies (Meta: 1 s)."
    )
    max_queue_wait_seconds: float = Field(
        default=240.0,
        ge=0,
        description=(
            "Longest a paced send waits in-process; a later slot fails the node with a "
            "retryable error and the slot stays in the ledger."
        ),
    )
    refresh_after_hours: float = Field(
        default=24.0, ge=24, description="Long-lived tokens older than this are refreshed daily."
    )


class LLMPrice(BaseModel):
    """What one model charges, in USD per million tokens."""

    input: float = Field(ge=0, description="USD per million prompt tokens.")
    output: float = Field(ge=0, description="USD per million completion tokens.")


# Published list prices; override or extend with SOCIALFLOW_KNOWLEDGE_LLM_PRICES.
DEFAULT_LLM_PRICES: dict[str, LLMPrice] = {
    "gpt-4o-mini": LLMPrice(input=0.15, output=0.60),
    "gpt-4o": LLMPrice(input=2.50, output=10.00),
    "gpt-4.1": LLMPrice(input=2.00, output=8.00),
    "gpt-4.1-mini": LLMPrice(input=0.40, output=1.60),
    "gpt-4.1-nano": LLMPrice(input=0.10, output=0.40),
    "claude-3-5-haiku": LLMPrice(input=0.80, output=4.00),
    "claude-haiku-4-5": LLMPrice(input=1.00, output=5.00),
    "claude-3-7-sonnet": LLMPrice(input=3.00, output=15.00),
    "claude-sonnet-4": LLMPrice(input=3.00, output=15.00),
    "claude-opus-4": LLMPrice(input=15.00, output=75.00),
}


class KnowledgeSettings(BaseModel):
    """Object storage, embeddings and vector stores for knowledge bases, and the AI nodes."""

    embedder: Literal["minilm", "openai", "ollama"] = Field(
        default="minilm",
        description=(
            "Embedding provider for new knowledge bases: minilm (built in, runs locally), "
            "openai (any OpenAI-compatible endpoint) or ollama."
        ),
    )
    embedder_model: str | None = Field(
        default=None,
        description=(
            "Embedding model id; empty: all-MiniLM-L6-v2 (minilm), text-embedding-3-small "
            "(openai), nomic-embed-text (ollama)."
        ),
    )
    embedder_base_url: str | None = Field(
        default=None, description="Base URL of the openai or ollama embedding endpoint."
    )
    embedder_api_key: SecretStr | None = Field(
        default=None, description="API key of the openai-compatible embedding endpoint."
    )
    embed_batch_size: int = Field(
        default=64, ge=1, le=2048, description="Texts per request to a remote embedder."
    )
    embed_max_tokens: int = Field(
        default=256,
        ge=16,
        le=512,
        description="Built-in embedder: tokens kept per text (MiniLM was trained at 256).",
    )
    vector_store: Literal["embedded", "pinecone"] = Field(
        default="embedded",
        description="embedded (SQLite files in store_path, no server) or pinecone.",
    )
    store_path: Path | None = Field(
        default=None,
        description="Folder of the embedded vector store; empty: <data_dir>/knowledge.",
    )
    hybrid_candidates: int = Field(
        default=50,
        ge=1,
        le=1000,
        description="Candidates taken from each of dense and BM25 search before fusion.",
    )
    hybrid_fusion: Literal["convex", "rrf"] = Field(
        default="convex",
        description=(
            "How hybrid search fuses dense and BM25 candidates: convex (a weighted sum of "
            "normalised scores) or rrf (reciprocal ranks)."
        ),
    )
    hybrid_dense_weight: float = Field(
        default=0.4,
        ge=0,
        le=1,
        description=(
            "Convex fusion: the weight of dense search (BM25 gets the rest); a knowledge base "
            "may set its own."
        ),
    )
    pinecone_api_key: SecretStr | None = Field(
        default=None, description="Pinecone API key (vector_store=pinecone)."
    )
    pinecone_index_host: str | None = Field(
        default=None,
        description="Pinecone index host, e.g. https://docs-abc123.svc.aped-4627.pinecone.io.",
    )
    pinecone_index_name: str | None = Field(
        default=None, description="Pinecone index name; its host is looked up when host is empty."
    )
    pinecone_control_host: str | None = Field(
        default=None, description="Pinecone control-plane URL; empty: Pinecone's public API."
    )
    pinecone_dimension: int | None = Field(
        default=None,
        ge=1,
        le=20_000,
        description="Dimension of the Pinecone index; checked against the embedder when set.",
    )
    pinecone_batch_size: int = Field(
        default=100, ge=1, le=1000, description="Records per Pinecone upsert request."
    )
    storage_url: str | None = Field(
        default=None,
        description=(
            "Where uploaded files are kept: s3://bucket/prefix (S3 or MinIO, through s3fs) or "
            "a local folder; empty: <data_dir>/uploads."
        ),
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="S3 endpoint, e.g. http://minio:9000 for MinIO; empty: AWS.",
    )
    s3_region: str | None = Field(
        default=None, description="S3 region of the bucket, e.g. eu-west-1."
    )
    s3_access_key_id: SecretStr | None = Field(
        default=None, description="S3 access key id; empty: the AWS default credential chain."
    )
    s3_secret_access_key: SecretStr | None = Field(
        default=None, description="S3 secret access key."
    )
    max_upload_bytes: int = Field(
        default=25_000_000, ge=1024, description="Largest document accepted by an upload."
    )
    max_unpacked_bytes: int = Field(
        default=50_000_000,
        ge=1024,
        description="Most a document packed as an archive (DOCX) may unpack to, all its "
        "parts together; larger ones fail ingestion unread.",
    )
    max_unpack_ratio: int = Field(
        default=100,
        ge=10,
        description="Most any part over 1 MB of an archive document may expand (unpacked size "
        "over packed size); text compresses about 5-20 times, archive bombs thousands.",
    )
    chunk_size: int = Field(
        default=1000, ge=100, le=8000, description="Target characters per chunk."
    )
    chunk_overlap: int = Field(
        default=150, ge=0, le=2000, description="Characters shared by neighbouring chunks."
    )
    llm_model_openai: str = Field(
        default="gpt-4o-mini",
        min_length=1,
        description="Chat model of AI nodes using an openai credential when they name none.",
    )
    llm_model_anthropic: str = Field(
        default="claude-3-5-haiku-latest",
        min_length=1,
        description="Chat model of AI nodes using an anthropic credential when they name none.",
    )
    llm_model_ollama: str = Field(
        default="llama3.2",
        min_length=1,
        description="Chat model of AI nodes using Ollama when they name none.",
    )
    llm_ollama_base_url: str = Field(
        default="http://127.0.0.1:11434",
        description="Ollama server used by AI nodes when the workspace has no ollama credential.",
    )
    llm_temperature: float = Field(
        default=0.2, ge=0, le=2, description="Sampling temperature of AI nodes that set none."
    )
    llm_max_tokens: int = Field(
        default=512, ge=1, le=32_000, description="Answer length limit of AI nodes that set none."
    )
    llm_timeout_seconds: float = Field(
        default=60.0, gt=0, le=600, description="Timeout of one chat-model request."
    )
    llm_prices: dict[str, LLMPrice] = Field(
        default_factory=lambda: dict(DEFAULT_LLM_PRICES),
        description=(
            "USD per million tokens by model id (the longest matching prefix wins), as JSON: "
            '{"gpt-4o-mini": {"input": 0.15, "output": 0.6}}. Unlisted models have no cost, '
            "except Ollama's, which cost nothing."
        ),
    )


class PublishingSettings(BaseModel):
    """Scheduled posts: where their media live, how Meta fetches them, how publishing waits."""

    media_base_url: str | None = Field(
        default=None,
        description=(
            "Public base URL Meta fetches post media from (Meta cURLs every image and video, "
            "so it must be reachable from the internet over http(s), e.g. "
            "https://socialflow.example.com); the app serves signed, expiring links under "
            "/api/publishing/media/. Empty: api.public_url. With S3 storage, presigned S3 URLs "
            "are offered instead and this is not used."
        ),
    )
    media_url_seconds: int = Field(
        default=3600,
        ge=60,
        le=7 * 86400,
        description="How long a signed media link stays valid (Meta fetches at container time).",
    )
    max_image_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, description="Largest image accepted (Meta: 8 MiB)."
    )
    max_video_bytes: int = Field(
        default=300 * 1024 * 1024,
        ge=1024,
        description="Largest video accepted (Meta: 300 MB for reels, 100 MB for stories).",
    )
    lease_seconds: float = Field(
        default=300.0,
        ge=5,
        le=3600,
        description=(
            "A publishing attempt not heard from for this long counts as dead and the post is "
            "taken up again from what was recorded."
        ),
    )
    max_attempts: int = Field(
        default=12, ge=1, le=100, description="Attempts of one post before it is marked failed."
    )
    poll_seconds: float = Field(
        default=600.0,
        gt=0,
        le=3600,
        description=(
            "Longest one attempt polls a container's status (backoff from 2 s to 60 s) before "
            "it gives the post back for a later attempt; containers expire after 24 h."
        ),
    )
    work_pool: str = Field(
        default="socialflow-publishing",
        min_length=1,
        max_length=100,
        description=(
            "Prefect work pool of the publish-post deployment; every process of one "
            "installation must name the same one (several installations may share a Prefect "
            "server with a pool each)."
        ),
    )
    sweep_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="How often a worker looks for due posts whose Prefect run went missing.",
    )


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
        default="",
        description=(
            "Signs tokens and derives development keys (webhook and credential keys when none "
            f"are configured). At least {MIN_SECRET_KEY_LENGTH} random characters outside "
            "development. Empty in development: a random key generated on first start and "
            f"kept in <data_dir>/{_SECRET_KEY_FILE} (mode 0600)."
        ),
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
    publishing: PublishingSettings = Field(default_factory=PublishingSettings)

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        self.secret_key = _checked_secret_key(self.secret_key, self.environment, self.data_dir)
        if self.environment == "production" and not self.security.master_keys:
            msg = "SOCIALFLOW_SECURITY_MASTER_KEYS must be set when environment=production"
            raise ValueError(msg)
        return self

    @property
    def database_url(self) -> str:
        """The configured database URL; else the embedded PostgreSQL of the data directory once
        `socialflow up` has created it there, else a SQLite file in the data directory."""
        if self.database.url:
            return self.database.url
        if self.embedded_postgres:
            return embedded_url(self.data_dir)
        return f"sqlite+aiosqlite:///{(self.data_dir / 'socialflow.db').resolve()}"

    @property
    def embedded_postgres(self) -> bool:
        """True when the application database is the embedded PostgreSQL of the data dir."""
        return not self.database.url and (cluster_dir(self.data_dir) / "PG_VERSION").exists()

    @property
    def prefect_database_url(self) -> str | None:
        """The database of the Prefect server `socialflow up` starts: the configured one, else
        a database named ``prefect`` beside the application's on PostgreSQL; None: SQLite in
        Prefect's home."""
        if self.prefect.database_url:
            return self.prefect.database_url
        if self.embedded_postgres:
            return embedded_url(self.data_dir, "prefect", driver="asyncpg")
        url = self.database_url
        if not url.startswith("postgresql"):
            return None
        from sqlalchemy.engine import make_url

        prefect = make_url(url).set(drivername="postgresql+asyncpg", database="prefect")
        return prefect.render_as_string(hide_password=False)


def secret_key_file(data_dir: Path) -> Path:
    """Where development keeps its generated secret key: ``<data_dir>/secret_key``."""
    return data_dir / _SECRET_KEY_FILE


def generated_key_file(settings: Settings) -> Path | None:
    """The file the secret key in use was generated into, or None when it was configured."""
    path = secret_key_file(settings.data_dir.resolve())
    if settings.environment != "development":
        return None
    try:
        return path if path.read_text().strip() == settings.secret_key else None
    except OSError:
        return None


def _checked_secret_key(key: str, environment: str, data_dir: Path) -> str:
    """The secret key to use, or a ValueError saying what is wrong with the configured one."""
    if not key:
        if environment == "development":
            return _development_secret(secret_key_file(data_dir))
        msg = (
            f"SOCIALFLOW_SECRET_KEY must be set when environment={environment}: at least "
            f"{MIN_SECRET_KEY_LENGTH} random characters ({_KEY_ADVICE})"
        )
        raise ValueError(msg)
    if key.startswith(_PLACEHOLDER_PREFIX):
        msg = (
            f"SOCIALFLOW_SECRET_KEY is a published example value (it starts with "
            f"{_PLACEHOLDER_PREFIX!r}); set a random one ({_KEY_ADVICE})"
            + (", or unset it to have one generated" if environment == "development" else "")
        )
        raise ValueError(msg)
    floor = _MIN_DEVELOPMENT_KEY_LENGTH if environment == "development" else MIN_SECRET_KEY_LENGTH
    if len(key) < floor:
        msg = (
            f"SOCIALFLOW_SECRET_KEY is {len(key)} characters long; environment={environment} "
            f"needs at least {floor} random characters ({_KEY_ADVICE})"
        )
        raise ValueError(msg)
    return key


def _development_secret(path: Path) -> str:
    """The key kept at ``path``, generated (mode 0600) by the first process that needs it."""
    existing = _read_secret(path)
    if existing is not None:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # written whole under a private name, then linked into place: a process starting at the
    # same moment either sees no file or the complete key, and link() refuses to overwrite
    # the key another process linked first, so every process of the stack agrees on one key
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(key + "\n")
        try:
            os.link(draft, path)
        except FileExistsError:
            winner = _read_secret(path)
            if winner is None:  # pragma: no cover - a concurrent start left an empty file
                raise
            return winner
    finally:
        draft.unlink(missing_ok=True)
    return key


def _read_secret(path: Path) -> str | None:
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        return None
    if len(key) < MIN_SECRET_KEY_LENGTH:
        msg = (
            f"{path} holds no usable secret key (fewer than {MIN_SECRET_KEY_LENGTH} "
            "characters); restore it from a backup, or delete it to have a new one generated "
            "(sessions end, and credentials saved under the old key no longer open)"
        )
        raise ValueError(msg)
    return key


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings of this process, read once from the environment."""
    return Settings()
