"""Server-side requests: every URL a user sets passes one address guard, when it is saved and
again when the server connects (after DNS, on every redirect).

Driven as an attacker would: an admin saves credentials whose base URL points inside the
server's network; a credential that got past the save check (saved before a DNS change, or
before the guard) is used by an AI node run by the engine and by a knowledge base through the
API. The "internal" server answers every request with a secret, as a metadata service or an
internal admin API would; a refused request must never reach it, and the secret must never
appear in an error.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from socialflow.api.app import create_app
from socialflow.api.auth.email import LogEmailSender
from socialflow.core.credentials import Credential, key_wrapper, parse_secret, seal_credential
from socialflow.core.settings import HttpSettings, Settings
from socialflow.knowledge import (
    IngestContext,
    IngestWorker,
    KnowledgeBase,
    get_embeddings,
    open_store,
    set_ingest_context,
)
from socialflow.orchestration import (
    EngineRuntime,
    GraphSpec,
    RunMeta,
    get_execution,
    start_graph_run,
)
from tests.api.conftest import Team, api_settings, make_team
from tests.fixtures.asgi_server import serve_app
from tests.fixtures.llm_server import serve_llm

SECRET = "iam-role-secret-7f3a9c"
PROVIDERS = ("openai", "anthropic", "ollama")


# --- save time: the credentials API ---------------------------------------------------------

INTERNAL_URLS = [
    ("http://127.0.0.1:11434", "loopback"),
    ("http://[::1]:11434", "loopback"),
    ("http://169.254.169.254/latest/meta-data", "link-local"),
    ("http://[::7f00:1]:8080", "IPv4-compatible"),
    ("http://[::ffff:127.0.0.1]:8080", "IPv4-mapped"),
    ("http://[64:ff9b::7f00:1]:8080", "NAT64"),
    ("http://localhost:11434", "it resolves to"),  # a name that resolves to loopback
    ("http://2130706433:8080", "loopback"),  # 127.0.0.1 written as one number
    ("https://10.0.0.5/v1", "private-use"),
]


def _secret(kind: str, url: str) -> dict[str, str]:
    return {"base_url": url} if kind == "ollama" else {"api_key": "sk-test-key", "base_url": url}


def _credentials(team: Team) -> str:
    return f"/api/workspaces/{team.workspace_id}/credentials"


@pytest.mark.parametrize("kind", PROVIDERS)
async def test_saving_a_model_credential_with_an_internal_base_url_is_refused(
    client: httpx.AsyncClient, team: Team, kind: str
) -> None:
    for url, reason in INTERNAL_URLS:
        answer = await client.post(
            _credentials(team),
            json={"name": f"x-{uuid.uuid4().hex[:6]}", "kind": kind, "secret": _secret(kind, url)},
            headers=team.admin.headers,
        )
        assert answer.status_code == 422, (url, answer.text)
        problem = answer.json()["details"]["problems"][0]
        assert problem["field"] == "body.secret.base_url", url
        assert problem["type"] == "address_forbidden", url
        assert reason in problem["message"], (url, problem["message"])
        assert "SOCIALFLOW_HTTP_ALLOWED_HOSTS" in problem["message"]
    listed = await client.get(_credentials(team), headers=team.admin.headers)
    assert listed.json() == [], "nothing refused was stored"


async def test_an_s3_endpoint_and_url_tricks_are_refused_too(
    client: httpx.AsyncClient, team: Team
) -> None:
    s3 = {"access_key_id": "AKIA", "secret_access_key": "secret-key-1234567890"}
    answer = await client.post(
        _credentials(team),
        json={
            "name": "MinIO",
            "kind": "s3",
            "secret": {**s3, "endpoint_url": "http://169.254.169.254"},
        },
        headers=team.admin.headers,
    )
    assert answer.status_code == 422, answer.text
    problem = answer.json()["details"]["problems"][0]
    assert (problem["field"], problem["type"]) == ("body.secret.endpoint_url", "address_forbidden")

    # user info can make a URL read like another host; a key belongs in the key field
    answer = await client.post(
        _credentials(team),
        json={
            "name": "Tricky",
            "kind": "openai",
            "secret": _secret("openai", "http://api.openai.com@127.0.0.1/v1"),
        },
        headers=team.admin.headers,
    )
    assert answer.status_code == 422, answer.text
    problem = answer.json()["details"]["problems"][0]
    assert (problem["field"], problem["type"]) == ("body.secret.base_url", "invalid_url")


async def test_replacing_a_secret_checks_its_url(client: httpx.AsyncClient, team: Team) -> None:
    created = await client.post(
        _credentials(team),
        json={"name": "LLM", "kind": "openai", "secret": _secret("openai", "https://llm.example")},
        headers=team.admin.headers,
    )
    assert created.status_code == 201, created.text
    answer = await client.patch(
        f"{_credentials(team)}/{created.json()['id']}",
        json={"secret": _secret("openai", "http://169.254.169.254/v1")},
        headers=team.admin.headers,
    )
    assert answer.status_code == 422, answer.text
    problem = answer.json()["details"]["problems"][0]
    assert (problem["field"], problem["type"]) == ("body.secret.base_url", "address_forbidden")
    one = f"{_credentials(team)}/{created.json()['id']}"
    after = await client.get(one, headers=team.admin.headers)
    assert after.json()["updated_at"] == created.json()["updated_at"], "the old secret stays"


async def test_an_allowed_host_may_be_saved(db: Any, test_registry: Any) -> None:
    settings = api_settings(db.url, http={"allowed_hosts": ["127.0.0.1", "localhost"]})
    app = create_app(settings, db=db, registry=test_registry, email=LogEmailSender())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            team = await make_team(client)
            for name, url in (("Local", "http://127.0.0.1:11434"), ("Named", "http://localhost:1")):
                answer = await client.post(
                    _credentials(team),
                    json={"name": name, "kind": "ollama", "secret": {"base_url": url}},
                    headers=team.admin.headers,
                )
                assert answer.status_code == 201, answer.text
            # what is not on the list stays refused
            refused = await client.post(
                _credentials(team),
                json={"name": "Meta", "kind": "ollama", "secret": {"base_url": "http://[::1]:1"}},
                headers=team.admin.headers,
            )
            assert refused.status_code == 422, refused.text


# --- connection time: the engine -------------------------------------------------------------


@dataclass
class _Internal:
    """Answers everything with the secret (as an error, which clients put in their messages),
    or redirects every path to ``redirect_to``; ``hits`` lists the targets requested."""

    redirect_to: str | None = None
    hits: list[str] = field(default_factory=list)
    port: int = 0

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self._answer, methods=["GET", "POST"])])

    async def _answer(self, request: Request) -> Response:
        await request.body()
        query = request.scope["query_string"].decode()
        target = request.scope["raw_path"].decode() + (f"?{query}" if query else "")
        self.hits.append(target)
        if self.redirect_to:
            return Response(status_code=307, headers={"Location": f"{self.redirect_to}{target}"})
        body = json.dumps(
            {"error": {"message": SECRET, "type": "invalid_request_error"}, "secret": SECRET}
        ).encode()
        return Response(body, 400, media_type="application/json")


@contextmanager
def _serve(redirect_to: str | None = None) -> Iterator[_Internal]:
    server = _Internal(redirect_to=redirect_to)
    with serve_app(server.app()) as running:
        server.port = running.port
        yield server


@pytest.fixture
def internal() -> Iterator[_Internal]:
    """A service only the server's own network should reach, holding a secret."""
    with _serve() as server:
        yield server


def _port(server: _Internal) -> int:
    return server.port


def _root(provider: str, host: str, port: int) -> str:
    # the OpenAI SDK's base URL ends in /v1; Anthropic's and Ollama's are the server's root
    return f"http://{host}:{port}" + ("/v1" if provider == "openai" else "")


async def _credential(
    settings: Settings, db: Any, workspace: uuid.UUID, kind: str, url: str, name: str = "Internal"
) -> uuid.UUID:
    """A credential stored as an earlier save left it: past the save check (the name resolved
    elsewhere then, or it predates the guard)."""
    from socialflow.api.workspaces.models import Workspace

    async with db.session() as session:
        if await session.get(Workspace, workspace) is None:
            session.add(Workspace(id=workspace, name=f"w-{workspace.hex[:6]}"))
            await session.flush()
        row = Credential(workspace_id=workspace, name=name, kind=kind)
        seal_credential(row, parse_secret(kind, _secret(kind, url)), key_wrapper(settings))
        session.add(row)
    return row.id


def _prompt_graph(provider: str, credential: str) -> GraphSpec:
    return GraphSpec.model_validate(
        {
            "nodes": [
                {"id": "t", "kind": "trigger.manual"},
                {
                    "id": "ask",
                    "kind": "ai.llm_prompt",
                    "config": {
                        "prompt": "Say hello to {{ trigger.name }}",
                        "provider": provider,
                        "credential": credential,
                    },
                    "settings": {"retries": 2, "retry_delay_seconds": 0},
                },
            ],
            "edges": [{"source": "t", "source_port": "event", "target": "ask"}],
        }
    )


async def _run(runtime: EngineRuntime, provider: str, workspace: uuid.UUID) -> Any:
    meta = RunMeta(flow_name="ssrf", workspace_id=workspace)
    await start_graph_run(_prompt_graph(provider, "Internal"), {"name": "Ana"}, meta)
    async with runtime.db.session() as session:
        return await get_execution(session, meta.execution_id)


def _allow(runtime: EngineRuntime, *hosts: str) -> None:
    runtime.settings = runtime.settings.model_copy(
        update={"http": HttpSettings(allowed_hosts=list(hosts))}
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_ai_node_cannot_reach_an_internal_address(
    runtime: EngineRuntime, internal: _Internal, provider: str, host: str
) -> None:
    workspace = uuid.uuid4()
    url = _root(provider, host, _port(internal))
    await _credential(runtime.settings, runtime.db, workspace, provider, url)
    execution = await _run(runtime, provider, workspace)
    assert execution.status == "failed"
    ask = execution.node("ask")
    assert ask.error_code == "address_forbidden", ask.error
    assert f"refusing to connect to {host!r}" in ask.error
    assert "loopback" in ask.error and "SOCIALFLOW_HTTP_ALLOWED_HOSTS" in ask.error
    assert ask.attempts == 1, "a refusal is not retried"
    assert SECRET not in f"{ask.error} {execution.error}"
    assert internal.hits == [], "nothing reached the internal service"


async def test_a_redirect_to_an_internal_address_is_refused(
    runtime: EngineRuntime, internal: _Internal
) -> None:
    # the admin allowed one local model server by name; it redirects to another service
    _allow(runtime, "localhost")
    with _serve(redirect_to=f"http://127.0.0.1:{_port(internal)}") as front:
        workspace = uuid.uuid4()
        url = _root("openai", "localhost", _port(front))
        await _credential(runtime.settings, runtime.db, workspace, "openai", url)
        execution = await _run(runtime, "openai", workspace)
        assert front.hits, "the allowed server was asked"
    ask = execution.node("ask")
    assert ask.error_code == "address_forbidden", ask.error
    assert "refusing to connect to '127.0.0.1'" in ask.error
    assert SECRET not in f"{ask.error} {execution.error}"
    assert internal.hits == []


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_allowed_hosts_admit_a_local_model_server(
    runtime: EngineRuntime, provider: str
) -> None:
    _allow(runtime, "127.0.0.1")
    with serve_llm() as llm:
        llm.script("hello to ana", reply="Hello, Ana!")
        workspace = uuid.uuid4()
        url = llm.url if provider == "openai" else llm.ollama_url
        await _credential(runtime.settings, runtime.db, workspace, provider, url)
        execution = await _run(runtime, provider, workspace)
    assert execution.status == "completed", execution.error
    assert execution.node("ask").output["text"] == "Hello, Ana!"


# --- connection time: knowledge bases through the API ----------------------------------------


@pytest.fixture
async def knowledge_api(
    db: Any, test_registry: Any, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, Team, IngestContext]]:
    settings = api_settings(db.url, data_dir=tmp_path)
    app = create_app(settings, db=db, registry=test_registry, email=LogEmailSender())
    context = IngestContext(settings=settings, db=db)  # each base's own embedder
    app.state.knowledge = context
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client, await make_team(client), context
    set_ingest_context(None)


@pytest.mark.prefect
async def test_a_knowledge_base_cannot_embed_through_an_internal_address(
    knowledge_api: tuple[httpx.AsyncClient, Team, IngestContext],
    internal: _Internal,
) -> None:
    client, team, context = knowledge_api
    workspace = uuid.UUID(team.workspace_id)
    url = _root("openai", "localhost", _port(internal))
    credential = await _credential(context.settings, context.db, workspace, "openai", url)
    bases = f"/api/workspaces/{team.workspace_id}/knowledge-bases"

    # creating a base asks the embedder once (its dimension)
    created = await client.post(
        bases,
        json={"name": "Help", "embedder_provider": "openai", "credential_id": str(credential)},
        headers=team.editor.headers,
    )
    assert created.status_code == 400, created.text
    assert created.json()["code"] == "address_forbidden"
    assert SECRET not in created.text

    # a base made and filled while the name resolved elsewhere: search and ingestion refuse
    base = KnowledgeBase(
        workspace_id=workspace,
        name="Old",
        embedder_provider="openai",
        embedder_model="scripted-embed",
        embedder_dimension=64,
        credential_id=credential,
    )
    async with context.db.session() as session:
        session.add(base)
    then = context.settings.model_copy(update={"http": HttpSettings(allowed_hosts=["127.0.0.1"])})
    with serve_llm() as llm:
        embedder = get_embeddings(
            then, provider="openai", model="scripted-embed", base_url=llm.url, api_key="sk-test-key"
        )
        store = open_store(context.settings, namespace=str(base.id), embeddings=embedder)
        store.add_texts(["Returns are free within 30 days."], [{"filename": "faq.md"}], ids=["a#0"])

    searched = await client.post(
        f"{bases}/{base.id}/search", json={"query": "returns", "k": 3}, headers=team.viewer.headers
    )
    assert searched.status_code == 400, searched.text
    assert searched.json()["code"] == "address_forbidden"
    assert SECRET not in searched.text

    uploaded = await client.post(
        f"{bases}/{base.id}/documents",
        files={"file": ("hours.md", b"# Hours\n\nWe open at 9.", "text/markdown")},
        headers=team.editor.headers,
    )
    assert uploaded.status_code == 202, uploaded.text
    await IngestWorker(context).drain()
    document = await client.get(
        f"{bases}/{base.id}/documents/{uploaded.json()['id']}", headers=team.viewer.headers
    )
    assert document.json()["status"] == "failed", document.text
    assert "refusing to connect to 'localhost'" in document.json()["error"]
    assert SECRET not in document.text
    assert internal.hits == []


def test_every_url_field_of_every_credential_kind_is_checked_when_saved() -> None:
    from socialflow.core.credentials import SECRET_MODELS, url_fields

    for kind, model in SECRET_MODELS.items():
        properties = model.model_json_schema()["properties"]
        urls = {name for name, field in properties.items() if "https?://" in json.dumps(field)}
        assert set(url_fields(model)) == urls, kind
    assert url_fields(SECRET_MODELS["s3"]) == ("endpoint_url",)
    assert all(url_fields(SECRET_MODELS[kind]) == ("base_url",) for kind in PROVIDERS)
