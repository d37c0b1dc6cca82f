"""Property-based requests against every operation of the OpenAPI document: bad input must
always get a 4xx with the one error body, never a server error.

Requests carry an admin's bearer token and, where a path names a workspace, that admin's real
workspace, so generated input reaches the services instead of stopping at the role check.
Figures (operations, examples sent) are written to test-artifacts/schemathesis-<db>.json.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import get_client

from socialflow.api.app import create_app
from socialflow.migrations import upgrade
from tests.api.conftest import PASSWORD, api_settings

EXAMPLES_PER_OPERATION = 15
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _migrate(url: str) -> None:
    # the suite's event loop may be alive in this thread; migrate from a thread of our own
    worker = threading.Thread(target=lambda: asyncio.run(upgrade(url)))
    worker.start()
    worker.join()


@pytest.mark.prefect
def test_no_server_errors(database_url: str, test_registry: Any) -> None:
    _migrate(database_url)
    app = create_app(api_settings(database_url), registry=test_registry)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    with get_client(app) as client:
        email = "fuzz-admin@example.com"
        client.post("/api/auth/register", json={"email": email, "password": PASSWORD})
        token = client.post("/api/auth/token", data={"username": email, "password": PASSWORD})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        workspace = client.post("/api/workspaces", json={"name": "Fuzz"}, headers=headers)
        assert workspace.status_code == 201, workspace.text
    workspace_id = workspace.json()["id"]
    sent: Counter[str] = Counter()
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 10

    def checker(operation: Any) -> Any:
        label = f"{operation.method.upper()} {operation.path}"
        deleting = label == "DELETE /api/workspaces/{workspace_id}"

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            params = case.path_parameters or {}
            if "workspace_id" in params and not deleting:
                case.path_parameters = {**params, "workspace_id": workspace_id}
            sent[label] += 1
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        return label, check

    for operation in operations:
        label, check = checker(operation)
        try:
            check()
        except Exception as exc:  # collect every failing operation, then report them all
            failures[label] = str(exc)[:2000]

    ARTIFACTS.mkdir(exist_ok=True)
    backend = "postgres" if database_url.startswith("postgresql") else "sqlite"
    report = {
        "operations": len(operations),
        "examples": sum(sent.values()),
        "per_operation": dict(sent),
        "failures": sorted(failures),
    }
    (ARTIFACTS / f"schemathesis-{backend}.json").write_text(json.dumps(report, indent=2))
    assert not failures, "server errors:\n" + "\n\n".join(f"{k}: {v}" for k, v in failures.items())
