"""Chat models for AI nodes: built from a workspace credential, errors mapped, usage priced."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import httpx
from pydantic import SecretStr

from socialflow.core.errors import AppError, TransientError, UserError
from socialflow.core.logging import get_logger
from socialflow.core.netguard import refusal_in
from socialflow.knowledge._guard import guarded_anthropic, guarded_clients, guarded_ollama_kwargs
from socialflow.knowledge._usage import Usage, price_of, sum_usage

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage, BaseMessage

    from socialflow.core.settings import Settings

__all__ = [
    "LLM_PROVIDERS",
    "ChatModel",
    "CredentialChatModels",
    "LLMProvider",
    "Usage",
    "build_chat_model",
    "map_llm_error",
    "price_of",
    "sum_usage",
]

_log = get_logger(__name__)

LLMProvider = Literal["openai", "anthropic", "ollama"]
LLM_PROVIDERS: tuple[str, ...] = ("openai", "anthropic", "ollama")
# upstream answers that may succeed when asked again later
_TRANSIENT_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
_AUTH_STATUS = frozenset({401, 403})
_MAX_UPSTREAM_MESSAGE = 300


class _Credentials(Protocol):
    async def get(self, kind: str, name: str | None = None) -> dict[str, Any]: ...


def build_chat_model(
    settings: Settings,
    provider: str,
    fields: Mapping[str, Any],
    *,
    model: str,
    temperature: float,
    max_tokens: int,
) -> BaseChatModel:
    """A LangChain chat model for a provider and a credential's fields.

    The client never retries by itself: rate limits and 5xx answers surface as errors that
    ``map_llm_error`` turns into ``TransientError``, and the engine retries the node.

    A ``base_url`` from the credential is user input: the client connects through the
    address guard (``SOCIALFLOW_HTTP_ALLOWED_HOSTS`` admits a local model server). The default
    Ollama server of the settings is the operator's and is called as configured.

    Args:
        settings: Timeout, the default Ollama server and the address policy.
        provider: ``openai`` (any OpenAI-compatible endpoint), ``anthropic`` or ``ollama``.
        fields: The credential's secret fields (``api_key``, ``base_url``).
        model: Model id.
        temperature: Sampling temperature.
        max_tokens: Longest answer, in tokens.

    Raises:
        UserError: Unknown provider.
    """
    timeout = settings.knowledge.llm_timeout_seconds
    base_url = str(fields["base_url"]) if fields.get("base_url") else None
    if provider == "openai":
        from langchain_openai import ChatOpenAI

        clients: dict[str, Any] = {}
        if base_url is not None:
            clients["http_client"], clients["http_async_client"] = guarded_clients(settings)
        return ChatOpenAI(
            model=model,
            api_key=SecretStr(str(fields["api_key"])),
            base_url=base_url,
            temperature=temperature,
            max_completion_tokens=max_tokens,
            timeout=timeout,
            max_retries=0,
            stream_usage=True,
            **clients,
        )
    if provider == "anthropic":
        from langchain_anthropic import ChatAnthropic

        options: dict[str, Any] = {
            "model_name": model,
            "api_key": SecretStr(str(fields["api_key"])),
            "temperature": temperature,
            "max_tokens_to_sample": max_tokens,
            "timeout": timeout,
            "max_retries": 0,
            "stream_usage": True,
        }
        if base_url is None:
            return ChatAnthropic(**options)
        return guarded_anthropic(settings, base_url=base_url, **options)
    if provider == "ollama":
        from langchain_ollama import ChatOllama

        client: dict[str, Any] = {"timeout": timeout}
        if fields.get("api_key"):
            client["headers"] = {"Authorization": f"Bearer {fields['api_key']}"}
        guarded = guarded_ollama_kwargs(settings) if base_url is not None else {}
        return ChatOllama(
            model=model,
            base_url=base_url or settings.knowledge.llm_ollama_base_url,
            temperature=temperature,
            num_predict=max_tokens,
            client_kwargs=client,
            **guarded,
        )
    msg = f"chat model provider {provider!r} is unknown; allowed: {', '.join(LLM_PROVIDERS)}"
    raise UserError(msg, code="unknown_llm_provider", details={"provider": provider})


def _upstream_message(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    text: Any = None
    if isinstance(body, Mapping):
        error = body.get("error", body)
        text = error.get("message") if isinstance(error, Mapping) else error
    text = text or getattr(exc, "error", None) or getattr(exc, "message", None) or str(exc)
    return " ".join(str(text).split())[:_MAX_UPSTREAM_MESSAGE]


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _is_timeout_or_connection(exc: BaseException) -> bool:
    import anthropic
    import openai

    network = (
        openai.APIConnectionError,
        anthropic.APIConnectionError,
        httpx.TransportError,
        ConnectionError,
        TimeoutError,
    )
    return isinstance(exc, network)


def map_llm_error(exc: Exception, *, where: str) -> AppError:
    """Turn a chat-model client's exception into the error the engine acts on.

    Rate limits, overload, 5xx, timeouts and connection failures become ``TransientError``
    (the engine retries the node); 401/403 become a ``UserError`` telling to check the
    credential; other 4xx a ``UserError`` with the upstream message. The address guard's
    refusal, which SDKs wrap as a connection error, comes out as itself (``address_forbidden``,
    never retried), naming the host and the rule.

    Args:
        exc: What the OpenAI, Anthropic or Ollama client raised.
        where: Which model and credential, for the message (``model 'x' via credential 'y'``).

    Returns:
        The error to raise (``raise map_llm_error(exc, ...) from exc``).
    """
    refusal = refusal_in(exc)
    if refusal is not None:
        return UserError(
            f"{where}: {refusal.message}", code=refusal.code, details=dict(refusal.details)
        )
    if isinstance(exc, AppError):
        return exc
    status = getattr(exc, "status_code", None)
    upstream = _upstream_message(exc)
    details = {"status": status, "upstream": upstream}
    if isinstance(status, int) and status in _TRANSIENT_STATUS:
        what = "rate limited" if status == 429 else "unavailable"
        msg = f"{where}: the chat model is {what} ({status}): {upstream}; retrying later"
        return TransientError(
            msg, retry_after=_retry_after(exc), code="llm_unavailable", details=details
        )
    if isinstance(status, int) and status in _AUTH_STATUS:
        msg = (
            f"{where} was refused by the chat-model endpoint ({status}: {upstream}); check the "
            "credential's API key and base URL"
        )
        return UserError(msg, code="llm_auth_failed", details=details)
    if isinstance(status, int) and 400 <= status < 500:
        msg = (
            f"{where}: the chat-model endpoint refused the request ({status}: {upstream}); "
            "check the model name and the node's settings"
        )
        return UserError(msg, code="llm_bad_request", details=details)
    if isinstance(status, int) and status >= 500:
        msg = f"{where}: the chat model failed ({status}): {upstream}; retrying later"
        return TransientError(msg, code="llm_unavailable", details=details)
    if _is_timeout_or_connection(exc):
        msg = f"{where}: the chat model did not answer ({type(exc).__name__}: {upstream})"
        return TransientError(msg, code="llm_unavailable", details=details)
    msg = f"{where}: the chat model call failed ({type(exc).__name__}: {upstream})"
    return UserError(msg, code="llm_failed", details=details)


@dataclass
class ChatModel:
    """A LangChain chat model plus what its errors and costs are reported against.

    Attributes:
        model: The LangChain chat model (usable directly; then map errors yourself).
        provider: ``openai``, ``anthropic`` or ``ollama``.
        model_name: The model id asked for.
        credential: The credential's name, or None for the workspace's only one of the kind.
        settings: For the price table.
    """

    model: BaseChatModel
    provider: str
    model_name: str
    credential: str | None
    settings: Settings

    @property
    def where(self) -> str:
        """``model 'gpt-4o-mini' via credential 'OpenAI prod' (openai)``, for messages."""
        via = (
            f"credential {self.credential!r} ({self.provider})"
            if self.credential
            else f"the workspace's {self.provider} credential"
        )
        if self.provider == "ollama" and not self.credential:
            via = f"the server's Ollama at {self.settings.knowledge.llm_ollama_base_url}"
        return f"model {self.model_name!r} via {via}"

    async def invoke(
        self,
        messages: Sequence[BaseMessage],
        *,
        tools: Sequence[dict[str, Any]] | None = None,
        tool_choice: str | None = None,
        json_mode: bool = False,
        stream: bool = False,
    ) -> AIMessage:
        """Ask the model; client errors come out as ``TransientError`` or ``UserError``.

        Args:
            messages: The conversation.
            tools: Tool schemas (OpenAI function format) the model may call.
            tool_choice: The tool it must call, by name.
            json_mode: Ask for a JSON object (OpenAI ``response_format``, Ollama ``format``);
                Anthropic has no such switch and relies on the prompt.
            stream: Receive the answer as a stream (server-sent events) and join it.

        Returns:
            The answer, with ``usage_metadata`` when the provider reports it.
        """
        from langchain_core.messages import AIMessage

        runnable: Any = self.model
        if tools:
            runnable = self.model.bind_tools(list(tools), tool_choice=tool_choice)
        elif json_mode and self.provider == "openai":
            runnable = self.model.bind(response_format={"type": "json_object"})
        elif json_mode and self.provider == "ollama":
            runnable = self.model.bind(format="json")
        try:
            if not stream:
                answer = await runnable.ainvoke(list(messages))
            else:
                answer = None
                async for chunk in runnable.astream(list(messages)):
                    answer = chunk if answer is None else answer + chunk
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = map_llm_error(exc, where=self.where)
            _log.info("chat model call failed", code=error.code, model=self.model_name)
            raise error from exc
        if answer is None:
            return AIMessage(content="")
        if not isinstance(answer, AIMessage):
            answer = AIMessage(
                content=answer.content,
                tool_calls=getattr(answer, "tool_calls", []),
                usage_metadata=getattr(answer, "usage_metadata", None),
                response_metadata=answer.response_metadata,
            )
        return answer

    def usage(self, *answers: AIMessage) -> Usage:
        """Tokens and cost of the given answers (priced by the model the provider reports)."""
        total = Usage(provider=self.provider, model=self.model_name)
        for answer in answers:
            meta: Mapping[str, Any] = answer.usage_metadata or {}
            reported = answer.response_metadata.get("model_name") or answer.response_metadata.get(
                "model"
            )
            model = str(reported or self.model_name)
            input_tokens = int(meta.get("input_tokens", 0))
            output_tokens = int(meta.get("output_tokens", 0))
            price = price_of(self.settings, model) or price_of(self.settings, self.model_name)
            cost = 0.0
            unpriced = 0
            if price is not None:
                cost = (input_tokens * price.input + output_tokens * price.output) / 1_000_000
            elif self.provider != "ollama":  # a local model costs nothing
                unpriced = 1
            total = total.plus(
                Usage(
                    provider=self.provider,
                    model=self.model_name,
                    calls=1,
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                    total_tokens=int(meta.get("total_tokens", input_tokens + output_tokens)),
                    cost_usd=cost,
                    unpriced_calls=unpriced,
                )
            )
        return total


class CredentialChatModels:
    """Chat models from the credentials of the run's workspace (what ``ctx.llm`` is in runs).

    Args:
        credentials: The run's credential resolver.
        settings: Defaults (model per provider, temperature, max tokens, timeout, prices).
    """

    def __init__(self, credentials: _Credentials, settings: Settings) -> None:
        self._credentials = credentials
        self._settings = settings

    async def get(
        self,
        provider: str,
        *,
        credential: str | None = None,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> ChatModel:
        """A chat model of ``provider`` with the workspace's credential.

        Args:
            provider: ``openai``, ``anthropic`` or ``ollama``.
            credential: The credential's name; None: the workspace's only credential of that
                kind (for Ollama: the server's configured Ollama, no credential needed).
            model: Model id; None: the provider's default from the settings.
            temperature: None: the settings' default.
            max_tokens: None: the settings' default.

        Raises:
            UserError: Unknown provider, or no such credential (``credential_missing``).
        """
        ks = self._settings.knowledge
        if provider not in LLM_PROVIDERS:
            msg = (
                f"chat model provider {provider!r} is unknown; allowed: {', '.join(LLM_PROVIDERS)}"
            )
            raise UserError(msg, code="unknown_llm_provider", details={"provider": provider})
        if provider == "ollama" and credential is None:
            fields: Mapping[str, Any] = {}
        else:
            fields = await self._credentials.get(provider, credential)
        defaults = {
            "openai": ks.llm_model_openai,
            "anthropic": ks.llm_model_anthropic,
            "ollama": ks.llm_model_ollama,
        }
        name = model or defaults[provider]
        chat = build_chat_model(
            self._settings,
            provider,
            fields,
            model=name,
            temperature=ks.llm_temperature if temperature is None else temperature,
            max_tokens=max_tokens or ks.llm_max_tokens,
        )
        return ChatModel(
            model=chat,
            provider=provider,
            model_name=name,
            credential=credential,
            settings=self._settings,
        )
