"""The API's documentation pages work under the app's Content-Security-Policy: every file they
load comes from the app itself, and the policy allows it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from socialflow.api.app import create_app
from tests.api.conftest import api_settings

ROOT = Path(__file__).resolve().parents[2]


class _Loads(HTMLParser):
    """The URLs a page loads (scripts, stylesheets, icons) and the inline scripts it has."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self._in_script_without_src = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script":
            if found.get("src"):
                self.urls.append(str(found["src"]))
            else:
                self._in_script_without_src = True
        if tag == "link" and found.get("href"):
            self.urls.append(str(found["href"]))
        for name in ("spec-url", "data-openapi-url"):
            if found.get(name):
                self.urls.append(str(found[name]))

    def handle_data(self, data: str) -> None:
        if self._in_script_without_src and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script_without_src = False


def loads(html: str) -> _Loads:
    parser = _Loads()
    parser.feed(html)
    return parser


def directives(policy: str) -> dict[str, list[str]]:
    parts = (p.split() for p in policy.split(";") if p.strip())
    return {p[0]: p[1:] for p in parts}


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(api_settings(f"sqlite+aiosqlite:///{tmp_path / 'docs.db'}"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.mark.parametrize(
    ("page", "needed"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "swagger-init.js"}),
        ("/redoc", {"redoc.standalone.js"}),
    ],
)
async def test_the_docs_load_only_same_origin_files_the_policy_allows(
    http: httpx.AsyncClient, page: str, needed: set[str]
) -> None:
    answer = await http.get(page)
    assert answer.status_code == 200
    found = loads(answer.text)
    assert found.inline_scripts == 0  # script-src 'self' refuses inline scripts
    assert needed <= {url.rsplit("/", 1)[-1] for url in found.urls}, found.urls
    assert "/favicon.svg" in found.urls
    policy = directives(answer.headers["content-security-policy"])
    assert policy["script-src"] == ["'self'"]
    assert "'self'" in policy["style-src"]
    for url in found.urls:
        assert url.startswith("/") and not url.startswith("//"), url  # this origin only
        loaded = await http.get(url)
        assert loaded.status_code == 200, url
        assert loaded.content, url
        if url.endswith(".js"):
            assert "javascript" in loaded.headers["content-type"], url
        if url.endswith(".css"):
            assert loaded.headers["content-type"].startswith("text/css"), url


async def test_the_swagger_page_starts_swagger_ui_on_the_app_s_openapi_document(
    http: httpx.AsyncClient,
) -> None:
    page = (await http.get("/docs")).text
    assert 'data-openapi-url="/openapi.json"' in page
    init = (await http.get("/docs/assets/swagger-init.js")).text
    assert "SwaggerUIBundle(" in init and "dataset.openapiUrl" in init
    assert (await http.get("/openapi.json")).json()["info"]["title"] == "Socialflow"


async def test_the_favicon_is_served_and_the_web_app_names_it(http: httpx.AsyncClient) -> None:
    icon = await http.get("/favicon.svg")
    assert icon.status_code == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")
    assert icon.text.lstrip().startswith("<svg")
    index = (ROOT / "frontend" / "index.html").read_text()
    assert "/favicon.svg" in loads(index).urls
