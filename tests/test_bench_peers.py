"""The pure parts of bench/peers.py (n8n beside Socialflow): both workflows say the same job,
the reply sink counts replies, the table prints. Nothing here installs n8n or needs the network.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from socialflow.nodes import default_registry, evaluate, render
from socialflow.orchestration import GraphSpec, compile_graph

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def peers() -> ModuleType:
    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module("peers")
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def load() -> ModuleType:
    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module("_load")
    finally:
        sys.path.remove(str(BENCH))


SINK = "http://127.0.0.1:9/reply"


def test_n8n_workflow_is_webhook_then_if_then_post_of_the_reply(peers: ModuleType) -> None:
    wf = json.loads(json.dumps(peers.n8n_workflow(SINK, workflow_id="a1b2c3d4e5f6a7b8")))
    by_name = {n["name"]: n for n in wf["nodes"]}
    assert [n["type"] for n in wf["nodes"]] == [
        "n8n-nodes-base.webhook",
        "n8n-nodes-base.if",
        "n8n-nodes-base.httpRequest",
    ]
    assert len({n["id"] for n in wf["nodes"]}) == 3
    hook = by_name["Webhook"]["parameters"]
    assert hook["httpMethod"] == "POST"
    assert hook["path"] == peers.WEBHOOK_PATH
    assert hook["responseMode"] == "onReceived"  # answers before the run, like our 202
    cond = by_name["Asks the price?"]["parameters"]["conditions"]
    assert cond["options"]["caseSensitive"] is False
    (only,) = cond["conditions"]
    assert only["leftValue"] == "={{ $json.body.text }}"
    assert only["rightValue"] == "price"
    assert only["operator"] == {"type": "string", "operation": "contains"}
    reply = by_name["Reply"]["parameters"]
    assert (reply["method"], reply["url"], reply["specifyBody"]) == ("POST", SINK, "json")
    assert json.dumps(peers.REPLY_TEXT) in reply["jsonBody"]
    assert reply["jsonBody"].startswith("={{ JSON.stringify({") and reply["jsonBody"].endswith(
        "}) }}"
    )
    # the true branch (output 0) posts, the false branch (output 1) ends the run
    assert wf["connections"]["Webhook"]["main"] == [
        [{"node": "Asks the price?", "type": "main", "index": 0}]
    ]
    assert wf["connections"]["Asks the price?"]["main"] == [
        [{"node": "Reply", "type": "main", "index": 0}],
        [],
    ]


def _scope(text: str) -> dict[str, Any]:
    return {"trigger": {"body": {"n": 7, "tag": "t-1", "text": text}}, "nodes": {}}


def test_socialflow_graph_compiles_and_says_the_same_job(peers: ModuleType) -> None:
    graph = peers.socialflow_graph(SINK)
    compile_graph(GraphSpec.model_validate(graph), default_registry())
    by_id = {n["id"]: n for n in graph["nodes"]}
    expression = by_id["check"]["config"]["expression"]
    assert evaluate(expression, _scope("What is the PRICE?")) is True
    assert evaluate(expression, _scope("lovely photo")) is False
    config = by_id["reply"]["config"]
    assert (config["method"], config["url"], config["body_type"]) == ("POST", SINK, "json")
    body = render(config["body"], _scope("price?"))
    assert json.loads(body) == {"n": 7, "tag": "t-1", "reply": peers.REPLY_TEXT}
    assert graph["edges"][1] == {"source": "check", "source_port": "true", "target": "reply"}


def test_load_bodies_ask_the_price_except_every_tenth(peers: ModuleType, load: ModuleType) -> None:
    for n in range(30):
        text = json.loads(load._body("t", n, peers.QUIET_EVERY))["text"]
        assert ("price" in text.lower()) is peers.asks_price(n), n
    assert sum(peers.asks_price(n) for n in range(100)) == 90
    # without --quiet-every the body is what bench/ingest.py always sent
    assert json.loads(load._body("t", 3)) == {
        "n": 3,
        "source": "bench",
        "tag": "t",
        "text": "a comment to answer",
    }


def test_reply_sink_counts_replies_duplicates_and_refuses_strangers(peers: ModuleType) -> None:
    with peers.ReplySink() as sink, httpx.Client(trust_env=False, timeout=5) as client:
        reply = {"n": 1, "tag": "a", "reply": peers.REPLY_TEXT}
        for body in (reply, reply, {**reply, "n": 2}, {**reply, "tag": "b"}):
            assert client.post(sink.url, json=body).status_code == 200
        for junk in (b"not json", b'{"n": "x", "tag": "a"}', b'{"n": 3, "tag": "a"}', b"[]"):
            assert client.post(sink.url, content=junk).status_code == 200
        got = sink.replies("a")
        sink.wait_for("a", {1, 2}, stall=5, limit=5)
    assert sorted(got) == [1, 2]
    assert len(got[1]) == 2  # a duplicate is kept, so it can be counted
    assert sink.malformed == 4  # wrong types, a missing or different reply text


def test_table_shows_how_far_each_system_trails_per_core(
    peers: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    n8n = peers.Outcome(system="n8n in-process", accepted=100, accept_wall=2.0, load="1.0")
    n8n.cpu_ms = {"n8n main": 20.0, "n8n task runner": 5.0}
    n8n.light_ms = [40.0, 50.0, 60.0]
    sf = peers.Outcome(system="socialflow", accepted=100, accept_wall=1.0, load="1.5")
    sf.cpu_ms = {"prefect server": 200.0, "worker(s)": 75.0, "API": 25.0}
    sf.lost, sf.duplicated = 1, 2
    rows = peers.result_rows([n8n, sf])
    header = peers.HEADER
    first, second = (dict(zip(header, row, strict=True)) for row in rows)
    assert first["CPU ms/exec"] == 25.0 and first["execs/CPU-s"] == 40.0
    assert first["per core vs 1st"] == 1.0 and first["p50 ms"] == 50.0
    assert first["accepted/s"] == 50.0
    assert second["CPU ms/exec"] == 300.0
    assert second["per core vs 1st"] == pytest.approx(25 / 300)
    assert second["lost/dup"] == "1/2"
    cpu = peers.cpu_rows([n8n, sf])
    assert cpu[0] == ("n8n main", 20.0, pytest.approx(float("nan"), nan_ok=True))
    assert cpu[-1] == ("total", 25.0, 300.0)
    args = type(
        "Args",
        (),
        {
            "light": 3,
            "light_rate": 2.0,
            "requests": 100,
            "concurrency": 16,
            "workers": 1,
            "worker_concurrency": 8,
        },
    )()
    n8n.records, sf.records = "100 executions", "100 executions, 300 node runs"
    peers.print_outcomes([n8n, sf], args, "1.123.0")
    out = capsys.readouterr().out
    assert "n8n in-process" in out and "socialflow" in out and "0.08" in out
    assert "n8n 1.123.0" in out and "300 node runs" in out


def test_records_are_what_the_measured_phases_added_per_execution(peers: ModuleType) -> None:
    before = {"flow_execution": 1, "prefect task_run": 2, "bytes": 1_000_000}
    after = {"flow_execution": 101, "prefect task_run": 282, "bytes": 3_000_000}
    text = peers.records(before, after, "flow_execution")
    assert text.startswith("100 executions;")
    assert "prefect task_run 2.80" in text and "flow_execution 1.00" in text
    assert "20.0 KB per execution" in text
