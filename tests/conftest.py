"""Test harness: one real Prefect server per session, databases on SQLite and PostgreSQL.

Prefect freezes its settings when it is first imported, and pytest may import a deeper
conftest (which imports Prefect) before any configure hook runs. So the server is started and
``PREFECT_API_URL`` set while this root conftest is imported, before anything else; ephemeral
mode is switched off so that a missing URL fails loudly instead of starting a private server.
"""

from __future__ import annotations

import atexit
import os
import secrets
import socket
import sys
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.ports import free_port

_state: dict[str, Any] = {}

#: ``make test-fast``: no Prefect server, no PostgreSQL; tests marked ``postgres``, ``prefect``,
#: ``slow`` or ``e2e`` are deselected (see ``pytest_collection_modifyitems``)
FAST = os.environ.get("SOCIALFLOW_TEST_TIER") == "fast"
#: what a test needs, by the fixtures it uses: the marker follows from the fixture
_NEEDS = {
    "pg_runtime": ("postgres", "prefect"),
    "postgres_url": ("postgres",),
    "runtime": ("prefect",),
}
_TIER_MARKERS = ("postgres", "prefect", "slow", "e2e")


class _Tripwire:
    """A loopback port standing in for a server the fast tier does not start: it takes each
    connection, counts it and hangs up, so the client fails at once and the harness can tell
    which test reached for the server (``_fast_tier_reaches_no_server``)."""

    def __init__(self, server: str) -> None:
        self.server = server
        self.hits = 0
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._socket.getsockname()[1])
        threading.Thread(target=self._serve, name=f"tripwire {server}", daemon=True).start()

    def _serve(self) -> None:
        while True:
            connection, _ = self._socket.accept()
            self.hits += 1
            connection.close()


#: the fast tier's stand-ins for Prefect's API and PostgreSQL; empty in the other tiers
_TRIPWIRES: dict[str, _Tripwire] = {}
if FAST:
    _TRIPWIRES = {"prefect": _Tripwire("Prefect's API"), "postgres": _Tripwire("PostgreSQL")}
    POSTGRES_URL = f"postgresql+psycopg://postgres@127.0.0.1:{_TRIPWIRES['postgres'].port}/postgres"
else:
    POSTGRES_URL = os.environ.get(
        "SOCIALFLOW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )


def _postgres_admin_dsn() -> str:
    return POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://", 1)


def _start_prefect() -> None:
    home = Path(tempfile.mkdtemp(prefix="socialflow-tests-"))
    _state["home"] = home
    os.environ.setdefault("SOCIALFLOW_ENVIRONMENT", "test")
    # outside development a secret key must be configured: one random key per test session,
    # inherited by the processes tests start (API, worker, CLI), so they agree with the tests
    os.environ.setdefault("SOCIALFLOW_SECRET_KEY", "tests-" + secrets.token_urlsafe(32))
    os.environ["PREFECT_HOME"] = str(home / "prefect-client")
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
    os.environ["PREFECT_LOGGING_TO_API_ENABLED"] = "false"
    # results of in-process runs stay in memory; nothing is written under PREFECT_HOME
    os.environ["PREFECT_RESULTS_PERSIST_BY_DEFAULT"] = "false"
    os.environ["PREFECT_SERVER_ALLOW_EPHEMERAL_MODE"] = "false"
    if FAST:
        # the fast tier starts no Prefect server: a test that reaches Prefect anyway fails
        # at once (the tripwire hangs up) and is told that it wants the ``prefect`` marker
        os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{_TRIPWIRES['prefect'].port}/api"
        os.environ["PREFECT_CLIENT_MAX_RETRIES"] = "0"
        os.environ["SOCIALFLOW_TEST_POSTGRES_URL"] = POSTGRES_URL
        return
    external = os.environ.get("SOCIALFLOW_TEST_PREFECT_API_URL")
    if external:
        os.environ["PREFECT_API_URL"] = external
        return
    from socialflow.stack import prefect_server

    port = free_port()
    # Prefect's server on SQLite stalls for seconds under bursts of runs; PostgreSQL does not
    database = _create_prefect_database()
    _state["prefect_database"] = database
    server = prefect_server(
        home / "prefect-server",
        port=port,
        ui=False,
        database_url=POSTGRES_URL.replace(
            "postgresql+psycopg://", "postgresql+asyncpg://", 1
        ).rsplit("/", 1)[0]
        + f"/{database}",
    )
    server.start()
    _state["prefect"] = server
    atexit.register(_stop_prefect)
    try:
        server.wait_healthy(timeout=180)
    except Exception:
        server.stop()
        raise
    os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with what it needs (by its fixtures and folder); the fast tier keeps
    only the tests that need none of PostgreSQL, a Prefect server, a browser or much time."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        for fixture in getattr(item, "fixturenames", ()):
            for marker in _NEEDS.get(fixture, ()):
                item.add_marker(marker)
        if "e2e" in item.path.parts:
            item.add_marker("e2e")
        if FAST and any(item.get_closest_marker(name) for name in _TIER_MARKERS):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(autouse=True)
def _fast_tier_reaches_no_server() -> Iterator[None]:
    """In the fast tier, a test that connected to Prefect's API or PostgreSQL (itself or through
    a process it started) fails, naming the marker it lacks: without this, a test that only
    logs or swallows the failed connection would pass while proving less than it says."""
    before = {marker: wire.hits for marker, wire in _TRIPWIRES.items()}
    yield
    reached = [marker for marker, wire in _TRIPWIRES.items() if wire.hits > before[marker]]
    if reached:
        servers = " and ".join(_TRIPWIRES[marker].server for marker in reached)
        markers = ", ".join(f"@pytest.mark.{marker}" for marker in reached)
        pytest.fail(
            f"this test reached {servers}, which the fast tier does not start: mark it "
            f"{markers} (or use a fixture that implies it, see _NEEDS in tests/conftest.py)"
        )


def pytest_unconfigure(config: pytest.Config) -> None:
    _stop_prefect()


def _stop_prefect() -> None:
    """Stop the session's Prefect server and drop its database (once; also at exit, since a
    command-line error ends pytest after this conftest started the server but before any
    ``pytest_unconfigure``)."""
    server = _state.pop("prefect", None)
    if server is not None:
        server.stop()
    database = _state.pop("prefect_database", None)
    if database is not None:
        import psycopg

        with psycopg.connect(_postgres_admin_dsn(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _create_prefect_database() -> str:
    import psycopg

    name = f"socialflow_prefect_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(_postgres_admin_dsn(), autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        msg = f"PostgreSQL at {POSTGRES_URL} is required for the test suite: {exc}"
        raise RuntimeError(msg) from exc
    return name


if "prefect" in sys.modules:  # pragma: no cover - a plugin imported it first
    msg = "Prefect was imported before the test harness could configure it"
    raise RuntimeError(msg)
_start_prefect()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this session; the test fails if the server is down."""
    import psycopg

    name = f"socialflow_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(_postgres_admin_dsn(), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} is required for these tests: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(_postgres_admin_dsn(), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'socialflow.db'}"


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def database_url(request: pytest.FixtureRequest) -> str:
    """Each database backend in turn: tests using it run on SQLite and on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[Any]:
    """A migrated database."""
    from socialflow.core.db import Database
    from socialflow.migrations import upgrade

    await upgrade(database_url)
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashes() -> Iterator[None]:
    """Passwords hashed in-process use Argon2 at its smallest cost: the same hasher, encoding and
    checks as in production, without 64 MiB and three passes (~0.5 s of CPU) per hash and per
    login, which every signed-up test user costs. Processes the tests start hash at full cost."""
    import functools

    from fastapi_users import password
    from pwdlib.hashers.argon2 import Argon2Hasher

    cheap = functools.partial(Argon2Hasher, time_cost=1, memory_cost=1024, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(password, "Argon2Hasher", cheap)
        yield


@pytest.fixture(scope="session")
def test_registry() -> Any:
    """Built-in kinds plus the test kinds of ``tests.fixtures.nodes``."""
    from socialflow.nodes import NodeRegistry
    from socialflow.nodes.builtins import BUILTIN_NODES
    from tests.fixtures.nodes import TEST_NODES

    return NodeRegistry([*BUILTIN_NODES, *TEST_NODES])


@pytest.fixture
async def runtime(db: Any, test_registry: Any) -> AsyncIterator[Any]:
    """The engine runtime runs use, on the parametrized database."""
    from socialflow.core.settings import Settings
    from socialflow.orchestration import EngineRuntime, set_runtime

    settings = Settings(database={"url": db.url}, http={"allowed_hosts": []})
    runtime = EngineRuntime(settings=settings, db=db, registry=test_registry)
    set_runtime(runtime)
    yield runtime
    set_runtime(None)
    for client in runtime._http.values():
        await client.aclose()


@pytest.fixture
async def pg_runtime(test_registry: Any) -> AsyncIterator[Any]:
    """An engine runtime on a PostgreSQL database of this test's own, for behaviour that needs
    row locks and NOTIFY. Its own database, because these tests start worker processes, which
    would otherwise also run whatever other tests left queued in a shared one."""
    import psycopg

    from socialflow.core.db import Database
    from socialflow.core.settings import Settings
    from socialflow.migrations import upgrade
    from socialflow.orchestration import EngineRuntime, set_runtime

    name = f"socialflow_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_postgres_admin_dsn(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}"
    await upgrade(url)
    db = Database(url)
    runtime = EngineRuntime(settings=Settings(database={"url": url}), db=db, registry=test_registry)
    set_runtime(runtime)
    try:
        yield runtime
    finally:
        set_runtime(None)
        await runtime.aclose()
        with psycopg.connect(_postgres_admin_dsn(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
