"""HTTP clients for model and embedding providers at a URL a workspace credential set: every
connection passes the address guard (``socialflow.core.netguard``).

URLs from the process's own settings (the default Ollama server, the operator's embedder
endpoint) are the operator's configuration, not user input, and are called without the guard.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import httpx2

from socialflow.core.netguard import (
    AddressPolicy,
    refusal_in,
    shared_transports,
    shared_transports2,
)

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from socialflow.core.settings import Settings

__all__ = [
    "guarded_anthropic",
    "guarded_clients",
    "guarded_ollama_kwargs",
    "policy_of",
    "reraise_refusal",
]


def policy_of(settings: Settings) -> AddressPolicy:
    """The address policy of this process (``SOCIALFLOW_HTTP_ALLOWED_HOSTS``)."""
    return AddressPolicy.from_hosts(settings.http.allowed_hosts)


def guarded_clients(settings: Settings) -> tuple[httpx2.Client, httpx2.AsyncClient]:
    """A sync and an async httpx2 client whose connections pass the guard, for the OpenAI and
    Anthropic SDKs (which set URL, headers and timeout per request).

    Redirects are followed as the SDKs' own clients do; each hop connects through the guard.
    """
    sync_transport, async_transport = shared_transports2(policy_of(settings))
    return (
        httpx2.Client(transport=sync_transport, follow_redirects=True, trust_env=False),
        httpx2.AsyncClient(transport=async_transport, follow_redirects=True, trust_env=False),
    )


def guarded_ollama_kwargs(settings: Settings) -> dict[str, dict[str, Any]]:
    """``sync_client_kwargs`` and ``async_client_kwargs`` for ``ChatOllama`` and
    ``OllamaEmbeddings``: the Ollama client builds its httpx clients on guarded transports."""
    sync_transport, async_transport = shared_transports(policy_of(settings))
    return {
        "sync_client_kwargs": {"transport": sync_transport, "trust_env": False},
        "async_client_kwargs": {"transport": async_transport, "trust_env": False},
    }


def guarded_anthropic(settings: Settings, **options: Any) -> BaseChatModel:
    """A ``ChatAnthropic`` whose SDK clients connect through the guard.

    ChatAnthropic takes no HTTP client: it builds its SDK clients in the cached properties
    ``_client`` and ``_async_client``, which a subclass overrides to hand them guarded ones.

    Args:
        settings: For the address policy.
        **options: ``ChatAnthropic`` arguments.
    """
    model: BaseChatModel = _guarded_anthropic_class()(**options)
    model._socialflow_settings = settings  # type: ignore[attr-defined]
    return model


@cache
def _guarded_anthropic_class() -> type[BaseChatModel]:
    from functools import cached_property

    import anthropic
    from langchain_anthropic import ChatAnthropic
    from pydantic import PrivateAttr

    class GuardedChatAnthropic(ChatAnthropic):
        _socialflow_settings: Any = PrivateAttr(default=None)

        @cached_property
        def _client(self) -> anthropic.Client:
            sync_client, _ = guarded_clients(self._socialflow_settings)
            return anthropic.Client(**self._client_params, http_client=sync_client)

        @cached_property
        def _async_client(self) -> anthropic.AsyncClient:
            _, async_client = guarded_clients(self._socialflow_settings)
            return anthropic.AsyncClient(**self._client_params, http_client=async_client)

    return GuardedChatAnthropic


def reraise_refusal(exc: BaseException) -> None:
    """Raise the guard's refusal if it is what ``exc`` wraps (SDKs report it as a connection
    error, which would be retried and would not say why)."""
    refusal = refusal_in(exc)
    if refusal is not None:
        raise refusal from exc
