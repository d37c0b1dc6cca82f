"""The scale-out shape on this machine: signed Instagram webhooks through NGINX (the project's
config, TLS) to three API processes, run by one and then three worker processes on one
PostgreSQL and one Prefect server (bench/scale.py, at a size that fits the suite; ``make scale``
runs the 5,000-event version).

Every event must run once and be answered once, duplicates included, and the Prometheus series
must move. The throughput ratio is reported by the benchmark, not asserted: the machine is shared.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
EVENTS = int(os.environ.get("SOCIALFLOW_TEST_SCALE_EVENTS", "300"))
#: the scaled-out Prefect shape starts nine more processes; its events are few
PREFECT_EVENTS = int(os.environ.get("SOCIALFLOW_TEST_SCALE_PREFECT_EVENTS", "60"))
REDIS_URL = os.environ.get("SOCIALFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379")

# whole stacks (PostgreSQL, Prefect, NGINX, several APIs and workers) for minutes
pytestmark = [pytest.mark.postgres, pytest.mark.prefect, pytest.mark.slow]


def _run_scale(tmp_path: Path, *args: str) -> tuple[dict[str, Any], Any]:
    if not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
        pytest.fail("nginx is missing: apt-get install -y nginx (.ci/run installs it)")
    out = tmp_path / "scale.json"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "scale.py"),
            *args,
            "--timeout",
            "900",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1400,
    )
    assert out.is_file(), f"no report (exit {result.returncode}):\n{result.stderr[-4000:]}"
    return json.loads(out.read_text()), result


def _prefect_recorded_everything(report: dict[str, Any]) -> None:
    """Every execution has its Prefect flow run and every node its task run, all completed."""
    distinct = report["distinct"]
    prefect = report["prefect"]
    assert prefect["executions_without_flow_run"] == 0
    assert prefect["node_runs_without_task_run"] == 0
    assert prefect["flow_runs"] == prefect["flow_runs_expected"] == distinct
    assert prefect["flow_run_states"] == {"COMPLETED": distinct}
    assert prefect["task_runs"] == prefect["task_runs_expected"] >= 3 * distinct
    assert prefect["task_run_states"] == {"COMPLETED": prefect["task_runs"]}


@pytest.mark.timeout(1500)
def test_every_event_runs_once_and_is_answered_once_across_replicas(tmp_path: Path) -> None:
    report, result = _run_scale(tmp_path, "--events", str(EVENTS), "--phases", "1,3")
    distinct, duplicates = report["distinct"], report["duplicates"]
    assert duplicates == round(EVENTS * 0.1) and distinct == EVENTS - duplicates
    assert report["apis"] == 3 and [p["workers"] for p in report["phases"]] == [1, 3]
    # every delivery was accepted (after retries, as Meta retries), none lost
    for phase in report["phases"]:
        assert phase["answered"] == {"200": phase["posts"]}, phase
        assert phase["runs"] == phase["distinct"] > 0
    assert sum(p["posts"] for p in report["phases"]) == EVENTS
    # one inbox row and one run per distinct event; every run completed
    assert report["inbox_rows"] == distinct
    assert report["executions_per_event"] == {"1": distinct}
    assert report["execution_statuses"] == {"completed": distinct}
    # one ledger row and one reply at the Graph API per comment: no double send
    assert report["ledger_per_comment"] == {"1": distinct}
    assert report["ledger_statuses"] == {"sent": distinct}
    assert report["replies_per_comment"] == {"1": distinct}
    # the series moved: summed over the three API processes and the workers
    metrics = report["metrics"]
    assert metrics["events_received"] == EVENTS
    assert metrics["events_deduplicated"] == duplicates
    assert metrics["runs_completed_gauge"] == distinct
    assert metrics["queue_depth"] == 0
    # three nodes per run (more only if a run stopped after losing its lease was counted too)
    assert metrics["worker_node_runs_completed"] >= 3 * distinct
    _prefect_recorded_everything(report)
    assert report["problems"] == []
    assert result.returncode == 0, result.stderr[-4000:]
    assert report["ratio"] > 0


@pytest.mark.timeout(1500)
def test_prefect_scaled_out_records_every_run_behind_nginx_with_redis(tmp_path: Path) -> None:
    """Two Prefect API processes behind NGINX, Prefect's services apart, Redis between them;
    three Socialflow APIs and two workers: every event answered once, every flow run and task
    run recorded in Prefect, nothing lost."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=5).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis does not answer at {REDIS_URL}: {exc} (.ci/run starts one)")
    report, result = _run_scale(
        tmp_path,
        "--events",
        str(PREFECT_EVENTS),
        "--phases",
        "2",
        "--prefect-apis",
        "2",
        "--redis-url",
        REDIS_URL,
        # nine more processes than the other shape on a PostgreSQL other suites share
        "--pool-size",
        "2",
        "--prefect-pool-size",
        "3",
    )
    distinct = report["distinct"]
    assert report["apis"] == 3 and report["prefect_apis"] == 2
    assert [p["workers"] for p in report["phases"]] == [2]
    phase = report["phases"][0]
    assert phase["answered"] == {"200": PREFECT_EVENTS}
    assert phase["runs"] == distinct > 0
    # the Prefect processes and Redis were measured apart (the tier really ran)
    assert {"prefect api x2", "prefect services"} <= set(phase["cpu_ms_per_run"])
    assert report["executions_per_event"] == {"1": distinct}
    assert report["execution_statuses"] == {"completed": distinct}
    assert report["ledger_per_comment"] == {"1": distinct}
    assert report["replies_per_comment"] == {"1": distinct}
    assert report["metrics"]["events_deduplicated"] == report["duplicates"]
    _prefect_recorded_everything(report)
    assert report["problems"] == []
    assert result.returncode == 0, result.stderr[-4000:]
