"""``socialflow doctor``: check configuration and connectivity, and say what to fix."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import httpx
from pydantic import ValidationError

from socialflow.core.settings import Settings, generated_key_file
from socialflow.core.stack_state import STATE_FILE, StackState, read_state

__all__ = ["Check", "Status", "diagnose", "load_settings"]

_TIMEOUT = 5.0


class Status(StrEnum):
    """Outcome of one check."""

    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    """One check's outcome: what was checked, what was found and, unless OK, how to fix it."""

    name: str
    status: Status
    message: str
    fix: str = ""

    def line(self) -> str:
        """The check as one printed line (two when there is something to fix)."""
        text = f"[{self.status.value:<4}] {self.name}: {self.message}"
        return f"{text}\n       fix: {self.fix}" if self.fix else text


def load_settings() -> tuple[Settings | None, Check]:
    """Read settings from the environment (and ``.env``), as every command does.

    Returns:
        The settings (None when they do not load) and the check reporting it.
    """
    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        fix = "set the SOCIALFLOW_* variable named above to an allowed value (see .env.example)"
        return None, Check("settings", Status.FAIL, f"{where}: {first['msg']}", fix)
    return settings, Check("settings", Status.OK, f"loaded (environment={settings.environment})")


async def diagnose(settings: Settings, *, prefect_api_url: str | None = None) -> list[Check]:
    """Run every check against ``settings``.

    Args:
        settings: The settings to check.
        prefect_api_url: The Prefect API to check; ``settings.prefect.api_url`` or the
            ``PREFECT_API_URL`` environment variable when omitted.

    Returns:
        One result per check, in a fixed order.
    """
    state = read_state(settings.data_dir.resolve())
    running = state if state is not None and not state.gone() else None
    url = (
        prefect_api_url
        or settings.prefect.api_url
        or os.environ.get("PREFECT_API_URL")
        or (running.prefect_api_url if running is not None else None)
    )
    checks = [
        _stack(settings, state),
        _secrets(settings),
        _master_keys(settings),
        _database_kind(settings),
        _prefect_database(settings),
    ]
    steps: list[Callable[[], Awaitable[list[Check]]]] = [
        lambda: _database(settings),
        lambda: _api(running),
        lambda: _prefect(url),
        lambda: _storage(settings),
    ]
    for step in steps:
        checks.extend(await step())
    checks += [_vector_store(settings), _instagram(settings), _frontend()]
    return checks


def _stack(settings: Settings, state: StackState | None) -> Check:
    """The `socialflow up` running on this data directory, if any."""
    data_dir = settings.data_dir.resolve()
    if state is None:
        return Check("stack", Status.OK, f"no `socialflow up` running on {data_dir}")
    gone = state.gone()
    if gone:
        fix = (
            f"start it again with `socialflow up` (a stack stopped without its Ctrl-C leaves "
            f"{data_dir / STATE_FILE}: delete it)"
        )
        return Check("stack", Status.WARN, f"stopped: {', '.join(gone)} no longer running", fix)
    message = (
        f"`socialflow up` (pid {state.pid}) running since {state.started_at}: API at "
        f"{state.api_url}, Prefect at {state.prefect_api_url}"
    )
    return Check("stack", Status.OK, message)


async def _api(running: StackState | None) -> list[Check]:
    """The running stack's API answers its liveness probe."""
    if running is None:
        return []
    fix = "see the API's log in the data directory (logs/api.log); restart `socialflow up`"
    try:
        async with httpx.AsyncClient(timeout=_TIMEOUT, trust_env=False) as http:
            answer = await http.get(f"{running.api_url}/healthz")
    except httpx.HTTPError as exc:
        return [Check("api", Status.FAIL, f"{running.api_url} unreachable: {exc!r}", fix)]
    if not answer.is_success:
        message = f"{running.api_url}/healthz answered {answer.status_code}"
        return [Check("api", Status.FAIL, message, fix)]
    return [Check("api", Status.OK, f"answers at {running.api_url}")]


def _secrets(settings: Settings) -> Check:
    # Settings refuse missing, placeholder and short keys: what is left to say is where it is
    generated = generated_key_file(settings)
    if generated is not None:
        return Check("secret key", Status.OK, f"generated, kept in {generated} (development)")
    return Check("secret key", Status.OK, "set")


def _master_keys(settings: Settings) -> Check:
    from socialflow.core.credentials import key_wrapper

    fix = (
        "set SOCIALFLOW_SECURITY_MASTER_KEYS to '[\"k1:<base64 of 32 random bytes>\"]' "
        "(python -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())')"
    )
    try:
        key_wrapper(settings)
    except ValueError as exc:
        return Check("master keys", Status.FAIL, str(exc), fix)
    if not settings.security.master_keys:
        return Check("master keys", Status.WARN, "none: derived from the secret key", fix)
    return Check("master keys", Status.OK, f"{len(settings.security.master_keys)} key(s) parse")


def _database_kind(settings: Settings) -> Check:
    url = settings.database_url
    if settings.embedded_postgres:
        where = f"embedded PostgreSQL in {settings.data_dir.resolve() / 'postgres'}"
        return Check("database kind", Status.OK, f"{where} (started by `socialflow up`)")
    if url.startswith("postgresql"):
        return Check("database kind", Status.OK, f"PostgreSQL ({_safe(url)})")
    fix = (
        "use PostgreSQL for more than one worker: SOCIALFLOW_DATABASE_URL=postgresql+psycopg://..."
    )
    status = Status.WARN if settings.environment == "production" else Status.OK
    note = "SQLite: one machine, dispatchers poll (no NOTIFY), no row locks across workers"
    return Check("database kind", status, note, fix if status is Status.WARN else "")


def _prefect_database(settings: Settings) -> Check:
    """Which database the Prefect server `socialflow up` starts keeps its runs in."""
    url = settings.prefect_database_url
    if url is None:
        home = settings.data_dir.resolve() / "prefect"
        fix = (
            "SQLite takes no burst (Prefect answers 'database is locked'): unset "
            "SOCIALFLOW_DATABASE_URL for the embedded PostgreSQL, or point it at a PostgreSQL "
            "server"
        )
        return Check("prefect database", Status.WARN, f"SQLite in {home}", fix)
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    if settings.prefect.database_url:
        return Check(
            "prefect database", Status.OK, f"{_safe(url)} (SOCIALFLOW_PREFECT_DATABASE_URL)"
        )
    if settings.embedded_postgres:
        return Check("prefect database", Status.OK, f"database {name!r} on the embedded PostgreSQL")
    return Check("prefect database", Status.OK, f"database {name!r} on the application's server")


async def _database(settings: Settings) -> list[Check]:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import Connection, text
    from sqlalchemy.ext.asyncio import create_async_engine

    from socialflow.migrations import alembic_config

    url = settings.database_url
    if url.startswith("sqlite"):
        path = Path(url.split(":///", 1)[-1])
        if not path.exists():
            return [
                Check(
                    "database",
                    Status.FAIL,
                    f"SQLite file {path} does not exist",
                    "run `socialflow db upgrade` (or `socialflow up`) to create it",
                )
            ]

    def current(connection: Connection) -> set[str]:
        return set(MigrationContext.configure(connection).get_current_heads())

    engine = create_async_engine(url)
    try:
        async with asyncio.timeout(_TIMEOUT * 2), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            found = await connection.run_sync(current)
    except Exception as exc:
        fix = "check SOCIALFLOW_DATABASE_URL (host, port, user, database) and that the server runs"
        if settings.embedded_postgres:
            fix = "start the stack with `socialflow up` (it starts the embedded PostgreSQL)"
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return [Check("database", Status.FAIL, f"unreachable: {reason}", fix)]
    finally:
        await engine.dispose()
    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    reachable = Check("database", Status.OK, f"reachable ({_safe(url)})")
    if found == heads:
        return [reachable, Check("migrations", Status.OK, "at head")]
    message = f"at {sorted(found) or 'nothing'}, head is {sorted(heads)}"
    return [reachable, Check("migrations", Status.FAIL, message, "run `socialflow db upgrade`")]


async def _prefect(url: str | None) -> list[Check]:
    if not url:
        fix = "set SOCIALFLOW_PREFECT_API_URL (or PREFECT_API_URL) to your Prefect server's /api"
        message = "no API URL: Prefect would start a private ephemeral server per process"
        return [Check("prefect", Status.WARN, message, fix)]
    fix = f"start the Prefect server or correct SOCIALFLOW_PREFECT_API_URL (now {url})"
    base = url.rstrip("/")
    try:
        async with httpx.AsyncClient(timeout=_TIMEOUT, trust_env=False) as http:
            health = await http.get(f"{base}/health")
            pool = await http.get(f"{base}/work_pools/socialflow") if health.is_success else None
    except httpx.HTTPError as exc:
        return [Check("prefect", Status.FAIL, f"{url} unreachable: {exc!r}", fix)]
    if not health.is_success or pool is None:
        return [Check("prefect", Status.FAIL, f"{url}/health answered {health.status_code}", fix)]
    checks = [Check("prefect", Status.OK, f"reachable at {url}")]
    if pool.status_code == 404:
        checks.append(
            Check(
                "work pool",
                Status.WARN,
                "`socialflow` does not exist yet",
                "publish a flow with a schedule, or run "
                "`prefect work-pool create socialflow --type process`",
            )
        )
    elif pool.is_success:
        checks.append(Check("work pool", Status.OK, "`socialflow` exists"))
    else:
        message = f"reading `socialflow` answered {pool.status_code}"
        checks.append(Check("work pool", Status.FAIL, message, fix))
    return checks


async def _storage(settings: Settings) -> list[Check]:
    from socialflow.core.errors import UserError
    from socialflow.knowledge import ObjectStorage

    fix_url = "set SOCIALFLOW_KNOWLEDGE_STORAGE_URL to s3://bucket/prefix or a local folder"
    try:
        storage = ObjectStorage.from_settings(settings)
    except UserError as exc:
        return [Check("object storage", Status.FAIL, exc.message, fix_url)]
    if storage.protocol == "file":
        return [_local_folder(Path(storage.root.removeprefix("file://")), fix_url)]
    bucket = storage.root.removeprefix("s3://").split("/", 1)[0]
    try:
        exists = await asyncio.wait_for(asyncio.to_thread(storage.fs.exists, bucket), _TIMEOUT * 2)
    except Exception as exc:
        fix = "check SOCIALFLOW_KNOWLEDGE_S3_ENDPOINT_URL, region and access keys"
        return [Check("object storage", Status.FAIL, f"S3 unreachable: {exc!r}"[:240], fix)]
    if not exists:
        fix = f"create bucket {bucket!r} or {fix_url}"
        return [Check("object storage", Status.FAIL, f"bucket {bucket!r} does not exist", fix)]
    return [Check("object storage", Status.OK, f"bucket {bucket!r} exists")]


def _local_folder(folder: Path, fix_url: str) -> Check:
    """A writable folder, or one the first upload can create; nothing is left behind."""
    if not folder.exists():
        parent = next((p for p in folder.parents if p.exists()), None)
        if parent is not None and parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
            return Check("object storage", Status.OK, f"{folder} will be created on first upload")
        fix = f"create {folder} writable by this user, or {fix_url}"
        return Check("object storage", Status.FAIL, f"{folder} cannot be created", fix)
    probe = folder / f".doctor-{uuid.uuid4().hex}"
    try:
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        fix = f"make {folder} writable by this user, or {fix_url}"
        return Check("object storage", Status.FAIL, f"{folder}: {exc.strerror}", fix)
    return Check("object storage", Status.OK, f"{folder} is writable")


def _vector_store(settings: Settings) -> Check:
    ks = settings.knowledge
    if ks.vector_store == "embedded":
        return Check("vector store", Status.OK, "embedded (in the database)")
    if ks.pinecone_api_key is None:
        fix = (
            "set SOCIALFLOW_KNOWLEDGE_PINECONE_API_KEY, "
            "or SOCIALFLOW_KNOWLEDGE_VECTOR_STORE=embedded"
        )
        return Check("vector store", Status.FAIL, "pinecone selected without an API key", fix)
    if not (ks.pinecone_index_host or ks.pinecone_index_name):
        fix = "set SOCIALFLOW_KNOWLEDGE_PINECONE_INDEX_NAME or ..._PINECONE_INDEX_HOST"
        return Check("vector store", Status.FAIL, "pinecone selected without an index", fix)
    return Check("vector store", Status.OK, "pinecone configured")


def _instagram(settings: Settings) -> Check:
    ig = settings.instagram
    missing = [
        name
        for name, value in (
            ("SOCIALFLOW_INSTAGRAM_APP_SECRETS", ig.app_secrets),
            ("SOCIALFLOW_INSTAGRAM_VERIFY_TOKEN", ig.verify_token),
        )
        if not value
    ]
    if not missing:
        return Check("instagram webhooks", Status.OK, "app secret and verify token configured")
    if settings.environment == "development" and not ig.app_secrets:
        # what `socialflow up` runs on out of the box: the API checks, and `socialflow
        # simulate` signs, webhooks with a secret derived from the secret key
        message = (
            "development secret derived from the secret key (`socialflow simulate` signs "
            f"with it); for Meta's own webhooks set {' and '.join(missing)}"
        )
        return Check("instagram webhooks", Status.OK, message)
    status = Status.FAIL if settings.environment == "production" else Status.WARN
    fix = f"set {' and '.join(missing)} (from the Meta app dashboard) to receive webhooks"
    return Check("instagram webhooks", status, f"{', '.join(missing)} not set", fix)


def _frontend() -> Check:
    from socialflow.api.webapp import DEFAULT_DIST

    if (DEFAULT_DIST / "index.html").is_file():
        return Check("web app", Status.OK, f"build found at {DEFAULT_DIST}")
    fix = "build it: cd frontend && npm ci && npm run build"
    return Check(
        "web app", Status.WARN, f"no build at {DEFAULT_DIST}; the API runs without UI", fix
    )


def _safe(url: str) -> str:
    """``url`` without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
