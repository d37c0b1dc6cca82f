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

import pytest

ROOT = Path(__file__).resolve().parents[1]
EVENTS = int(os.environ.get("SOCIALFLOW_TEST_SCALE_EVENTS", "300"))


@pytest.mark.timeout(1500)
def test_every_event_runs_once_and_is_answered_once_across_replicas(tmp_path: Path) -> None:
    if not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
        pytest.fail("nginx is missing: apt-get install -y nginx (.ci/run installs it)")
    out = tmp_path / "scale.json"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "scale.py"),
            "--events",
            str(EVENTS),
            "--phases",
            "1,3",
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
    report = json.loads(out.read_text())
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
    assert report["problems"] == []
    assert result.returncode == 0, result.stderr[-4000:]
    assert report["ratio"] > 0
