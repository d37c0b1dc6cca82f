"""The embedded PostgreSQL: a real server from the project's wheel, in a temporary folder."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from socialflow.core.embedded_postgres import (
    SOCKET_PATH_LIMIT,
    EmbeddedPostgres,
    EmbeddedPostgresError,
    default_socket_dir,
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One initialised cluster folder shared by the module's tests (initdb takes seconds)."""
    pgdata = tmp_path_factory.mktemp("embedded") / "postgres"
    EmbeddedPostgres(pgdata).init()
    yield pgdata
    EmbeddedPostgres(pgdata).stop()


@pytest.mark.postgres
def test_starts_applies_settings_and_restarts_only_for_a_changed_postmaster_setting(
    cluster: Path,
) -> None:
    pg = EmbeddedPostgres(cluster, server_settings={"max_connections": "150", "work_mem": "8MB"})
    pg.start()
    try:
        assert pg.setting("max_connections") == "150"
        assert pg.setting("work_mem") == "8192"  # kB
        assert pg.socket_path.exists()
        assert pg.create_databases("socialflow", "prefect") == ["socialflow", "prefect"]
        assert pg.create_databases("socialflow", "prefect") == []
        # Prefect's server needs pg_trgm; the app connects through the URL it is given
        with psycopg.connect(pg.url("prefect").replace("+psycopg", "")) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            assert conn.execute("SELECT similarity('price', 'prices')").fetchone() is not None
    finally:
        pg.stop()
    assert pg.running_pid() is None
    assert not pg.socket_path.exists()

    same = EmbeddedPostgres(cluster, server_settings={"max_connections": "150", "work_mem": "8MB"})
    same.start()
    same.stop()
    assert same.restarts == 0  # nothing changed: no restart

    reload_only = EmbeddedPostgres(
        cluster, server_settings={"max_connections": "150", "work_mem": "16MB"}
    )
    reload_only.start()
    try:
        assert reload_only.restarts == 0
        assert reload_only.setting("work_mem") == "16384"
    finally:
        reload_only.stop()

    changed = EmbeddedPostgres(cluster, server_settings={"max_connections": "160"})
    changed.start()
    try:
        assert changed.restarts == 1
        assert changed.setting("max_connections") == "160"
    finally:
        changed.stop()


@pytest.mark.postgres
def test_a_second_server_on_the_same_cluster_or_socket_is_refused(cluster: Path) -> None:
    first = EmbeddedPostgres(cluster, server_settings={})
    first.start()
    try:
        with pytest.raises(EmbeddedPostgresError, match=f"started by process {os.getpid()}"):
            EmbeddedPostgres(cluster, server_settings={}).start()
        # another cluster told to put its socket where the first one's is
        other = cluster.parent / "other"
        intruder = EmbeddedPostgres(other, socket_dir=first.socket_dir, server_settings={})
        with pytest.raises(EmbeddedPostgresError, match="is in use by another PostgreSQL"):
            intruder.start()
        assert intruder.running_pid() is None
        # the first one still serves
        assert first.setting("port") == "5432"
    finally:
        first.stop()
        shutil.rmtree(cluster.parent / "other", ignore_errors=True)


@pytest.mark.postgres
def test_a_server_left_by_a_killed_process_is_replaced(cluster: Path) -> None:
    import subprocess

    left = EmbeddedPostgres(cluster, server_settings={})
    left.start()
    orphan_pid = left.running_pid()
    dead = subprocess.Popen(["true"])  # a process that has exited: a dead owner
    dead.wait()
    left.owner_file.write_text(f"{dead.pid}\n")
    fresh = EmbeddedPostgres(cluster, server_settings={})
    fresh.start()
    try:
        assert fresh.running_pid() not in (None, orphan_pid)
        assert fresh.owner_file.read_text().strip() == str(os.getpid())
    finally:
        fresh.stop()
    assert not fresh.owner_file.exists()


def test_a_socket_path_past_the_limit_is_refused(tmp_path: Path) -> None:
    deep = Path(tempfile.gettempdir()) / ("d" * (SOCKET_PATH_LIMIT - 10))
    with pytest.raises(EmbeddedPostgresError, match=r"socket_dir: .* at most 107"):
        EmbeddedPostgres(tmp_path / "pg", socket_dir=deep)
    # the default socket folder stays short however deep the data directory is
    very_deep = tmp_path.joinpath(*["nested-folder"] * 12) / "postgres"
    pg = EmbeddedPostgres(very_deep)
    assert len(os.fsencode(pg.socket_path)) <= SOCKET_PATH_LIMIT
    assert pg.socket_dir == default_socket_dir(very_deep)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another user needs root")
def test_a_folder_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    pgdata = tmp_path / "postgres"
    pgdata.mkdir()
    os.chown(pgdata, 65534, 65534)  # nobody
    with pytest.raises(EmbeddedPostgresError, match="belongs to nobody"):
        EmbeddedPostgres(pgdata).init()
    assert not (pgdata / "PG_VERSION").exists()
    # a socket folder planted by someone else (it could be watched or replaced) is refused too
    planted = Path(tempfile.mkdtemp(prefix="sf-planted-"))
    try:
        os.chown(planted, 65534, 65534)
        mine = tmp_path / "mine"
        with pytest.raises(EmbeddedPostgresError, match="belongs to nobody"):
            EmbeddedPostgres(mine, socket_dir=planted, server_settings={}).start()
        assert EmbeddedPostgres(mine).running_pid() is None
    finally:
        shutil.rmtree(planted)


def test_a_socket_folder_that_is_a_link_is_refused(tmp_path: Path) -> None:
    target = Path(tempfile.mkdtemp(prefix="sf-target-"))
    link = Path(tempfile.gettempdir()) / f"sf-link-{os.getpid()}"
    link.symlink_to(target)
    try:
        pg = EmbeddedPostgres(tmp_path / "pg", socket_dir=link, server_settings={})
        with pytest.raises(EmbeddedPostgresError, match="not a directory"):
            pg.start()
    finally:
        link.unlink()
        shutil.rmtree(target)
