"""The ``socialflow`` command: up, run, validate, db, nodes, simulate."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

# Each command imports what it needs when it runs: `socialflow --help` and `simulate` start
# in a fraction of a second instead of loading Prefect, SQLAlchemy, FastAPI and LangChain
# (tests/test_cli.py holds the module to it).

if TYPE_CHECKING:
    from socialflow.core.settings import Settings

# plain help text: Typer's rich help loads rich's markdown and syntax modules, which took
# more CPU than everything else `socialflow --help` does
_PLAIN: dict[str, Any] = {"no_args_is_help": True, "rich_markup_mode": None}
app = typer.Typer(
    help="Socialflow: draw a flow, publish it, every matching event runs it.", **_PLAIN
)
db_app = typer.Typer(help="The application database.", **_PLAIN)
app.add_typer(db_app, name="db")
user_app = typer.Typer(help="Users.", **_PLAIN)
app.add_typer(user_app, name="user")
credentials_app = typer.Typer(help="Workspace credentials.", **_PLAIN)
app.add_typer(credentials_app, name="credentials")
executions_app = typer.Typer(help="Run history.", **_PLAIN)
app.add_typer(executions_app, name="executions")

EXIT_INVALID = 2


def _echo(text: str = "", *, err: bool = False) -> None:
    typer.echo(text, err=err)


def get_settings() -> Settings:
    """This process's settings (``socialflow.core.settings``, loaded on first use)."""
    from socialflow.core.settings import get_settings as settings_of_process

    return settings_of_process()


def _configure_logging(settings: Settings, *, json_output: bool | None = None) -> None:
    from socialflow.core.logging import configure_logging

    configure_logging(
        settings.logging.level,
        json_output=settings.logging.json_output if json_output is None else json_output,
    )


def _use_prefect_api(settings: Settings) -> None:
    """Point Prefect at the configured API before Prefect is imported."""
    if settings.prefect.api_url:
        os.environ["PREFECT_API_URL"] = settings.prefect.api_url


@contextlib.contextmanager
def _database_served(settings: Settings) -> Iterator[None]:
    """Serve the embedded PostgreSQL for one command when `socialflow up` is not running it.

    A server that already runs (the stack's) is used as it is and left running.
    """
    if not settings.embedded_postgres:
        yield
        return
    from socialflow.core.embedded_postgres import (
        EmbeddedPostgres,
        EmbeddedPostgresError,
        cluster_dir,
    )

    server = EmbeddedPostgres(cluster_dir(settings.data_dir))
    if server.running_pid() is not None:
        yield
        return
    try:
        server.start()
    except EmbeddedPostgresError as exc:
        _echo(f"cannot start the embedded PostgreSQL: {exc}", err=True)
        raise typer.Exit(1) from exc
    try:
        yield
    finally:
        server.stop()


def _load_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        _echo(f"cannot read {what} {path}: {exc.strerror}", err=True)
        raise typer.Exit(EXIT_INVALID) from exc
    except json.JSONDecodeError as exc:
        _echo(f"{what} {path} is not JSON: {exc}", err=True)
        raise typer.Exit(EXIT_INVALID) from exc


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply database migrations (SQLite file in the data dir unless SOCIALFLOW_DATABASE_URL)."""
    settings = get_settings()
    from socialflow.migrations import upgrade
    from socialflow.stack import safe_url

    with _database_served(settings):
        asyncio.run(upgrade(settings.database_url, revision))
    _echo(f"database at {safe_url(settings.database_url)} is at {revision}")


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option(help="Email to sign in with.")],
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="Password.")
    ],
    admin: Annotated[bool, typer.Option("--admin", help="Make the user a superuser.")] = False,
) -> None:
    """Create a user from the shell (the first admin of a new installation, say)."""
    settings = get_settings()
    try:
        with _database_served(settings):
            user_id = asyncio.run(_create_user(settings, email, password, superuser=admin))
    except ValueError as exc:
        _echo(f"cannot create {email}: {exc}", err=True)
        raise typer.Exit(EXIT_INVALID) from exc
    _echo(f"created user {email} ({user_id}){' as superuser' if admin else ''}")


async def _create_user(settings: Settings, email: str, password: str, *, superuser: bool) -> str:
    from fastapi_users.exceptions import InvalidPasswordException, UserAlreadyExists
    from fastapi_users_db_sqlalchemy import SQLAlchemyUserDatabase

    from socialflow.api.auth.email import LogEmailSender
    from socialflow.api.auth.models import OAuthAccount, User
    from socialflow.api.auth.passwords import PasswordRejected
    from socialflow.api.auth.schemas import UserCreate
    from socialflow.api.auth.users import UserManager
    from socialflow.core.db import Database
    from socialflow.migrations import upgrade

    await upgrade(settings.database_url)
    db = Database(settings.database_url)
    try:
        async with db.sessionmaker() as session:
            manager = UserManager(
                SQLAlchemyUserDatabase(session, User, OAuthAccount), settings, LogEmailSender()
            )
            try:
                user = await manager.create(
                    UserCreate(
                        email=email, password=password, is_superuser=superuser, is_verified=True
                    )
                )
            except UserAlreadyExists as exc:
                msg = "a user with this email exists"
                raise ValueError(msg) from exc
            except InvalidPasswordException as exc:
                raise ValueError(str(exc.reason)) from exc
            except PasswordRejected as exc:
                raise ValueError(exc.message) from exc
            return str(user.id)
    finally:
        await db.dispose()


@credentials_app.command("rotate-key")
def credentials_rotate_key() -> None:
    """Re-wrap every credential's data key with the first (current) master key."""
    from socialflow.core.credentials import rotate_master_key
    from socialflow.core.db import Database

    settings = get_settings()

    async def rotate() -> int:
        db = Database(settings.database_url)
        try:
            return await rotate_master_key(db, settings)
        finally:
            await db.dispose()

    with _database_served(settings):
        count = asyncio.run(rotate())
    keys = settings.security.master_keys
    current = keys[0].split(":")[0] if keys else "dev"
    _echo(f"re-wrapped {count} credential(s) with master key {current}")


@executions_app.command("prune")
def executions_prune(
    days: Annotated[
        int | None, typer.Option(min=1, help="Keep this many days (default: retention setting).")
    ] = None,
) -> None:
    """Delete executions (and their node runs) older than the retention period."""
    from socialflow.core.db import Database
    from socialflow.orchestration import prune_executions

    settings = get_settings()
    keep = days or settings.retention.execution_days

    async def prune() -> int:
        db = Database(settings.database_url)
        try:
            return await prune_executions(db, older_than_days=keep)
        finally:
            await db.dispose()

    with _database_served(settings):
        deleted = asyncio.run(prune())
    _echo(f"deleted {deleted} execution(s) older than {keep} days")


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="Runs at once.")] = 8,
    lease_seconds: Annotated[
        float, typer.Option(min=1, help="A claim lapses after this long without renewal.")
    ] = 30.0,
    poll_interval: Annotated[
        float, typer.Option(min=0.01, help="Longest sleep without a wake-up (SQLite polls).")
    ] = 0.2,
    dispatch: Annotated[bool, typer.Option(help="Also dispatch inbox events.")] = True,
    metrics_port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Serve Prometheus /metrics at this port."),
    ] = None,
    metrics_host: Annotated[
        str,
        typer.Option(
            help="Interface of /metrics: loopback, or 0.0.0.0 in a pod Prometheus scrapes."
        ),
    ] = "127.0.0.1",
    isolate: Annotated[
        bool,
        typer.Option(
            help="Run each execution in a fresh Python process of its own (isolation; slower "
            "to start) instead of in this one."
        ),
    ] = False,
) -> None:
    """Run queued executions as Prefect flow runs, until SIGTERM or Ctrl-C."""
    settings = get_settings()
    _use_prefect_api(settings)
    _configure_logging(settings)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=metrics_host)
        _echo(f"metrics at http://{metrics_host}:{metrics_port}/metrics")
    asyncio.run(
        _work(
            settings, concurrency, lease_seconds, poll_interval, dispatch=dispatch, isolate=isolate
        )
    )


async def _retrying(
    step: Callable[[], Awaitable[None]], what: str, *, wait_seconds: float = 120.0
) -> None:
    """Run a start-up step, retrying while the database is unreachable (a restart, a failover,
    a container started before the database)."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    delay = 0.5
    while True:
        try:
            await step()
            return
        except (OperationalError, InterfaceError, OSError) as exc:
            if loop.time() + delay > deadline:
                raise
            _echo(f"{what} failed ({type(exc).__name__}); retrying in {delay:.1f} s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def _work(
    settings: Settings,
    concurrency: int,
    lease: float,
    poll: float,
    *,
    dispatch: bool,
    isolate: bool = False,
) -> None:
    from socialflow.knowledge import IngestContext, IngestWorker
    from socialflow.migrations import upgrade
    from socialflow.orchestration import EngineRuntime, Worker, prefect_clients, set_runtime

    await _retrying(lambda: upgrade(settings.database_url), "migrating the database")
    runtime = EngineRuntime.from_settings(settings)
    set_runtime(runtime)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = Worker(
        runtime,
        concurrency=concurrency,
        lease_seconds=lease,
        poll_interval=poll,
        dispatch=dispatch,
        isolate=isolate,
    )
    # uploaded documents wait as pending rows; this worker also claims and ingests them
    ingester = IngestWorker(IngestContext(settings=settings, db=runtime.db))
    mode = ", each run in its own process" if isolate else ""
    _echo(f"worker {runner.name} ready (concurrency {concurrency}{mode})")
    try:
        # one Prefect API client of each kind for the process, built under the worker's
        # bounded request timeout: otherwise every flow run builds a fresh sync client (a TLS
        # context, ~36 ms of CPU) and blocks the loop on a GET
        async with prefect_clients(settings.engine):
            await asyncio.gather(runner.run(stop), ingester.run(stop))
    finally:
        await runtime.aclose()
    _echo(f"worker stopped after {runner.completed} run(s)")


@app.command()
def ingest(
    document: Annotated[
        str | None, typer.Argument(help="A document id to (re-)ingest; empty: every pending one.")
    ] = None,
) -> None:
    """Ingest uploaded documents now, in this process, and exit (workers do it continuously)."""
    settings = get_settings()
    _use_prefect_api(settings)
    _configure_logging(settings)
    _echo(asyncio.run(_ingest(settings, document)))


async def _ingest(settings: Settings, document: str | None) -> str:
    from socialflow.core.db import Database
    from socialflow.knowledge import IngestContext, IngestWorker, ingest_document
    from socialflow.migrations import upgrade

    await upgrade(settings.database_url)
    db = Database(settings.database_url)
    try:
        worker = IngestWorker(IngestContext(settings=settings, db=db))
        if document is None:
            return f"ingested {await worker.drain()} document(s)"
        outcome = await ingest_document(document)
        return f"document {document}: {outcome.status.value} ({outcome.chunks} chunks)" + (
            f": {outcome.error}" if outcome.error else ""
        )
    finally:
        await db.dispose()


@app.command()
def simulate(
    kind: Annotated[str, typer.Argument(help="What to simulate: comment, dm or mention.")],
    text: Annotated[str, typer.Argument(help="The comment or message text.")] = "",
    url: Annotated[
        str | None,
        typer.Option(
            help="API base URL (default: the running `socialflow up`'s, else api.public_url) "
            "or a full webhook URL."
        ),
    ] = None,
    account: Annotated[
        str | None, typer.Option(help="Instagram account id (ig_user_id) addressed.")
    ] = None,
    media: Annotated[
        str | None, typer.Option(help="Media id commented on or mentioned in.")
    ] = None,
    from_username: Annotated[
        str, typer.Option(help="Username of the simulated commenter.")
    ] = "simulated.user",
    flow: Annotated[
        str | None, typer.Option(help="Post to this flow's own endpoint instead of the app's.")
    ] = None,
) -> None:
    """Send a signed Instagram webhook to the running API, as Meta would; print the answer."""
    from socialflow.instagram import (
        DEMO_ACCOUNT_ID,
        SimulatedKind,
        build_payload,
        post_signed_sync,
        webhook_secrets,
    )

    kinds: dict[str, SimulatedKind] = {"comment": "comment", "dm": "dm", "mention": "mention"}
    if kind not in kinds:
        _echo(f"kind must be comment, dm or mention, not {kind!r}", err=True)
        raise typer.Exit(EXIT_INVALID)
    if kind != "mention" and not text:
        _echo(f"simulate {kind} needs the text, e.g. socialflow simulate {kind} 'price?'", err=True)
        raise typer.Exit(EXIT_INVALID)
    settings = get_settings()
    secrets = webhook_secrets(settings)
    if not secrets:
        _echo(
            "no Instagram app secret to sign with: set SOCIALFLOW_INSTAGRAM_APP_SECRETS", err=True
        )
        raise typer.Exit(EXIT_INVALID)
    target = (url or _running_api(settings) or settings.api.public_url).rstrip("/")
    if "/webhooks/instagram" not in target:
        target += "/webhooks/instagram"
    if flow:
        target += f"/{flow}"
    payload = build_payload(
        kinds[kind],
        text,
        account_id=account or DEMO_ACCOUNT_ID,
        media_id=media,
        from_username=from_username,
    )
    try:
        answer = post_signed_sync(target, payload, secrets[0])
    except (OSError, ValueError) as exc:  # connection refused, timeout: say where we tried
        _echo(f"cannot reach {target}: {getattr(exc, 'reason', exc)}", err=True)
        raise typer.Exit(1) from exc
    _echo(f"POST {target} -> {answer.status_code}")
    _echo(answer.text)
    if answer.status_code >= 400:
        raise typer.Exit(1)


def _running_api(settings: Settings) -> str | None:
    """The API URL of the `socialflow up` running on the data directory, if one runs."""
    from socialflow.core.stack_state import read_state

    state = read_state(settings.data_dir.resolve())
    return state.api_url if state is not None and not state.gone() else None


@app.command()
def doctor() -> None:
    """Check configuration and connectivity; print OK/WARN/FAIL with a fix; exit 1 on FAIL."""
    from socialflow.doctor import Status, diagnose, load_settings

    settings, loaded = load_settings()
    checks = [loaded]
    if settings is not None:
        checks += asyncio.run(diagnose(settings))
    for check in checks:
        _echo(check.line())
    failed = sum(c.status is Status.FAIL for c in checks)
    _echo(f"{failed} check(s) failed" if failed else "all checks passed")
    if failed:
        raise typer.Exit(1)


@app.command()
def nodes() -> None:
    """List the node kinds this installation knows, with where they came from."""
    from socialflow.nodes import default_registry

    registry = default_registry()
    for node in registry:
        _echo(
            f"{node.kind:<24} v{node.version:<3} {node.category:<8} {node.title:<20} "
            f"{registry.source(node)}"
        )


@app.command()
def validate(graph: Annotated[Path, typer.Argument(help="Graph JSON file.")]) -> None:
    """Check a graph and print every problem; exit 2 when there are any."""
    from socialflow.nodes import default_registry
    from socialflow.orchestration import validate_graph

    spec = _parse_graph(graph)
    problems = validate_graph(spec, default_registry())
    if problems:
        _print_problems(problems)
        raise typer.Exit(EXIT_INVALID)
    _echo(f"{graph}: valid ({len(spec.nodes)} nodes, {len(spec.edges)} edges)")


def _parse_graph(path: Path) -> Any:
    from pydantic import ValidationError

    from socialflow.orchestration import GraphSpec

    try:
        return GraphSpec.model_validate(_load_json(path, "graph"))
    except ValidationError as exc:
        _echo(f"{path} is not a graph:", err=True)
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"])
            _echo(f"  {where}: {error['msg']}", err=True)
        raise typer.Exit(EXIT_INVALID) from exc


def _print_problems(problems: list[Any]) -> None:
    _echo(f"{len(problems)} problem(s):", err=True)
    for p in problems:
        where = " ".join(
            x for x in (p.node_id and f"node={p.node_id}", p.field and f"field={p.field}") if x
        )
        _echo(f"  [{p.code}] {where}: {p.message}", err=True)


@app.command()
def run(
    graph: Annotated[Path, typer.Argument(help="Graph JSON file.")],
    input: Annotated[
        Path | None, typer.Option("--input", "-i", help="Trigger payload JSON file.")
    ] = None,
    flow_name: Annotated[
        str | None, typer.Option(help="Name shown in Prefect (default: file name).")
    ] = None,
) -> None:
    """Validate and run a graph as a Prefect flow run; print a table of its nodes."""
    settings = get_settings()
    _use_prefect_api(settings)
    _configure_logging(settings)
    spec = _parse_graph(graph)
    trigger = _load_json(input, "input") if input else {}
    if not isinstance(trigger, dict):
        _echo("the input must be a JSON object", err=True)
        raise typer.Exit(EXIT_INVALID)
    from socialflow.nodes import default_registry
    from socialflow.orchestration import validate_graph

    problems = validate_graph(spec, default_registry())
    if problems:
        _print_problems(problems)
        raise typer.Exit(EXIT_INVALID)
    try:
        report = asyncio.run(_run(settings, spec, trigger, flow_name or graph.stem))
    except Exception as exc:  # the run could not start or finish: say why in one line
        _echo(f"cannot run {graph}: {_reason(exc)}", err=True)
        prefect = os.environ.get("PREFECT_API_URL", "").rstrip("/")
        if prefect and prefect in str(exc):
            _echo(f"is Prefect's server at {prefect} running? `socialflow up` starts one", err=True)
        raise typer.Exit(1) from exc
    _print_report(report)
    if report.status != "completed":
        raise typer.Exit(1)


def _reason(exc: BaseException) -> str:
    """An exception as one line: an application error's own message, else its type and text."""
    from socialflow.core.errors import AppError

    if isinstance(exc, AppError):
        return exc.message
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _console_without_run_logs() -> None:
    """Keep Prefect's copy of its flow and task run logs off the terminal.

    A failed node would print Prefect's traceback of it there; the command prints the node's
    error in its table instead. The run logs still reach Prefect's API (its UI shows them).
    """
    import logging

    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logging.getLogger(name).propagate = False


async def _run(settings: Settings, spec: Any, trigger: dict[str, Any], name: str) -> Any:
    from socialflow.migrations import upgrade
    from socialflow.orchestration import (
        EngineRuntime,
        RunMeta,
        get_execution,
        set_runtime,
        start_graph_run,
    )

    _console_without_run_logs()
    await upgrade(settings.database_url)
    runtime = EngineRuntime.from_settings(settings)
    set_runtime(runtime)
    try:
        meta = RunMeta(flow_name=name)
        await start_graph_run(spec, trigger, meta)
        async with runtime.db.session() as session:
            return await get_execution(session, meta.execution_id)
    finally:
        await runtime.aclose()


def _print_report(report: Any) -> None:
    _echo(
        f"execution {report.id}  status={report.status}  "
        f"prefect flow run {report.prefect_flow_run_id}"
    )
    _echo(f"{'node':<20} {'kind':<20} {'status':<10} {'ms':>8}  output")
    for node in report.node_runs:
        ms = f"{node.duration_ms:.0f}" if node.duration_ms is not None else "-"
        shown = node.error if node.error else json.dumps(node.output, default=str)
        if len(shown) > 70:
            shown = shown[:67] + "..."
        _echo(f"{node.label[:20]:<20} {node.kind[:20]:<20} {node.status:<10} {ms:>8}  {shown}")
    if report.error:
        _echo(f"error: {report.error}")


@app.command()
def up(
    prefect_port: Annotated[int | None, typer.Option(help="Prefect server port.")] = None,
    api_port: Annotated[int | None, typer.Option(help="API port.")] = None,
) -> None:
    """Start the embedded stack on 127.0.0.1 (Prefect server, API, worker); Ctrl-C stops it."""
    from socialflow.core.embedded_postgres import EmbeddedPostgresError
    from socialflow.stack import serve

    settings = get_settings()
    _configure_logging(settings, json_output=False)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        serve(
            settings,
            prefect_port=prefect_port,
            api_port=api_port,
            stopping=stopping,
            say=_echo,
            warn=lambda text: _echo(text, err=True),
        )
    except KeyboardInterrupt:
        pass
    except (EmbeddedPostgresError, RuntimeError) as exc:
        _echo(f"cannot start: {exc}", err=True)
        raise typer.Exit(1) from exc


def _refused_settings(exc: Exception) -> list[str] | None:
    """What to print when ``exc`` says the settings do not load (a placeholder secret key, a
    bad value); None for any other error.

    pydantic is loaded whenever one of its errors was raised: a command that never needed it
    does not load it here either.
    """
    if "pydantic" not in sys.modules:
        return None
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError) or exc.title != "Settings":
        return None
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "settings"
        # the validator's own sentence, without pydantic's "Value error, " prefix
        reason = (error.get("ctx") or {}).get("error", error["msg"])
        lines.append(f"cannot start: {where}: {reason}")
    return lines


def main() -> None:
    """Entry point of the ``socialflow`` script."""
    try:
        app()
    except Exception as exc:
        # settings that do not load: say which and why, without a traceback
        lines = _refused_settings(exc)
        if lines is None:
            raise
        for line in lines:
            _echo(line, err=True)
        raise SystemExit(EXIT_INVALID) from exc


if __name__ == "__main__":
    main()
