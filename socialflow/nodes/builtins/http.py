"""The HTTP request node: call any public HTTP API, with private addresses refused."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import httpx
from pydantic import Field

from socialflow.core.errors import TransientError, UserError
from socialflow.core.netguard import AddressPolicy, guarded_request
from socialflow.nodes._base import BaseNode, NodeConfig, NodeContext, Port
from socialflow.nodes._template import Template

__all__ = ["HttpRequestNode"]


class HttpRequestNode(BaseNode):
    """Sends an HTTP request and outputs the response (status, headers, body)."""

    kind = "http.request"
    example_config: ClassVar[dict[str, Any]] = {"url": "https://example.com/api"}
    title = "HTTP request"
    category = "action"
    icon = "globe"
    inputs = (Port(name="in", description="Optional: data the templates can use as input."),)
    outputs = (Port(name="response", type="http.response", description="Status, headers, body."),)

    class Config(NodeConfig):
        method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = Field(
            default="GET", description="HTTP method."
        )
        url: Template = Field(
            min_length=1, max_length=4000, description="Absolute http(s) URL; templates allowed."
        )
        headers: dict[str, Template] = Field(
            default_factory=dict, max_length=50, description="Headers; values may be templates."
        )
        query: dict[str, Template] = Field(
            default_factory=dict, max_length=100, description="Query parameters; templates allowed."
        )
        body_type: Literal["none", "json", "form", "text"] = Field(
            default="none", description="How the body is sent."
        )
        body: Template = Field(
            default="",
            max_length=100_000,
            description=(
                "Body template. For json, a template that yields an object (e.g. "
                "'{{ nodes.set.out }}') or JSON text; for form, one that yields an object."
            ),
        )
        timeout_seconds: float = Field(default=15.0, gt=0, le=120, description="Request timeout.")
        fail_on_status: bool = Field(
            default=True,
            description="Fail the node on 4xx and 5xx answers instead of passing them on.",
        )

    config: Config

    async def run(self, ctx: NodeContext, *args: Any, **inputs: Any) -> dict[str, Any]:
        cfg = self.config
        url = ctx.render_text(cfg.url, field_name="url")
        request: dict[str, Any] = {
            "headers": {
                k: ctx.render_text(v, field_name=f"headers.{k}") for k, v in cfg.headers.items()
            },
            "timeout": min(cfg.timeout_seconds, ctx.settings.http.max_timeout_seconds),
        }
        if cfg.query:
            # httpx replaces the URL's own query string when params are given, so merge here
            merged = httpx.URL(url).params.merge(
                {k: ctx.render_text(v, field_name=f"query.{k}") for k, v in cfg.query.items()}
            )
            url = str(httpx.URL(url).copy_with(params=merged))
        if cfg.body_type != "none":
            body = ctx.render(cfg.body, field_name="body")
            if cfg.body_type == "json":
                request["json"] = _json_body(body)
            elif cfg.body_type == "form":
                if not isinstance(body, dict):
                    msg = f"node {ctx.node_id!r} field 'body': a form body must be an object"
                    raise UserError(msg, code="invalid_body")
                request["data"] = {str(k): str(v) for k, v in body.items()}
            else:
                request["content"] = ("" if body is None else str(body)).encode()
        if ctx.sandbox:
            # a test run has no external side effects: describe the request, send nothing
            sent = {
                k: v.decode("utf-8", "replace") if isinstance(v, bytes) else v
                for k, v in request.items()
                if k != "timeout"
            }
            ctx.logger.info("sandbox: HTTP request not sent", method=cfg.method, url=url)
            return {
                "response": {
                    "status": None,
                    "headers": {},
                    "body": None,
                    "url": url,
                    "sandboxed": True,
                    "request": {"method": cfg.method, "url": url, **sent},
                }
            }
        http = ctx.settings.http
        response = await guarded_request(
            ctx.http,
            cfg.method,
            url,
            policy=AddressPolicy.from_hosts(http.allowed_hosts),
            max_redirects=http.max_redirects,
            max_bytes=http.max_response_bytes,
            **request,
        )
        if cfg.fail_on_status and response.status_code >= 400:
            _raise_for_status(response, url)
        return {"response": _describe(response)}


def _json_body(body: Any) -> Any:
    if isinstance(body, str):
        import json

        try:
            return json.loads(body)
        except ValueError as exc:
            msg = f"field 'body': not valid JSON: {exc}"
            raise UserError(msg, code="invalid_body") from exc
    return body


def _describe(response: httpx.Response) -> dict[str, Any]:
    content_type = response.headers.get("content-type", "")
    body: Any = response.text
    if "json" in content_type and response.content:
        try:
            body = response.json()
        except ValueError:
            body = response.text
    return {
        "status": response.status_code,
        "headers": dict(response.headers),
        "body": body,
        "url": response.extensions.get("logical_url", str(response.url)),
    }


def _raise_for_status(response: httpx.Response, url: str) -> None:
    status = response.status_code
    message = f"{url} answered HTTP {status}: {response.text[:300]}"
    details = {"status": status}
    if status == 429 or status >= 500:
        retry_after = response.headers.get("retry-after")
        delay = float(retry_after) if retry_after and retry_after.isdigit() else None
        raise TransientError(message, retry_after=delay, code="http_status", details=details)
    raise UserError(message, code="http_status", details=details)
