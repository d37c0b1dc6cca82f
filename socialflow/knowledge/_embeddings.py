"""Embedding models for knowledge bases: the built-in MiniLM, OpenAI-compatible and Ollama."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any

from langchain_core.embeddings import Embeddings

from socialflow.core.errors import UserError
from socialflow.knowledge._guard import guarded_clients, guarded_ollama_kwargs, reraise_refusal

if TYPE_CHECKING:
    from socialflow.core.settings import Settings

__all__ = ["DEFAULT_MODELS", "EMBEDDING_PROVIDERS", "NamedEmbeddings", "get_embeddings"]

EMBEDDING_PROVIDERS = ("minilm", "openai", "ollama")
DEFAULT_MODELS = {
    "minilm": "all-MiniLM-L6-v2",
    "openai": "text-embedding-3-small",
    "ollama": "nomic-embed-text",
}
# Dimensions of well-known remote models; others are measured with one probe call.
_KNOWN_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
    "nomic-embed-text": 768,
    "mxbai-embed-large": 1024,
    "all-minilm": 384,
}


class NamedEmbeddings(Embeddings):
    """A LangChain embedder that also says which model it runs and how long its vectors are.

    Stores record ``provider``, ``model_name`` and ``dimension`` per namespace and refuse an
    embedder that differs (see ``EmbedderMismatchError``).
    """

    provider: str
    model_name: str

    @property
    @abstractmethod
    def dimension(self) -> int:
        """Length of every vector this embedder returns."""


class _RemoteEmbeddings(NamedEmbeddings):
    """Wraps a LangChain embedder of a remote provider with its name and dimension."""

    def __init__(self, inner: Embeddings, *, provider: str, model_name: str) -> None:
        self._inner = inner
        self.provider = provider
        self.model_name = model_name
        self._dimension = _KNOWN_DIMENSIONS.get(model_name)

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self._dimension = len(self.embed_query("dimension probe"))
        return self._dimension

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        try:
            vectors = self._inner.embed_documents(texts)
        except Exception as exc:
            reraise_refusal(exc)
            raise
        if vectors:
            self._dimension = len(vectors[0])
        return vectors

    def embed_query(self, text: str) -> list[float]:
        try:
            vector = self._inner.embed_query(text)
        except Exception as exc:
            reraise_refusal(exc)
            raise
        self._dimension = len(vector)
        return vector

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        try:
            return await self._inner.aembed_documents(texts)
        except Exception as exc:
            reraise_refusal(exc)
            raise

    async def aembed_query(self, text: str) -> list[float]:
        try:
            return await self._inner.aembed_query(text)
        except Exception as exc:
            reraise_refusal(exc)
            raise


def get_embeddings(
    settings: Settings,
    *,
    provider: str | None = None,
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
) -> NamedEmbeddings:
    """Build the embedder a knowledge base uses.

    Args:
        settings: Process settings; ``settings.knowledge.embedder*`` fill what is not given.
        provider: ``minilm`` (built in, numpy only), ``openai`` (OpenAI-compatible endpoint)
            or ``ollama``.
        model: Model id; the provider's default when empty.
        base_url: Endpoint of the openai / ollama server, from a workspace credential: user
            input, so the client connects through the address guard. When empty, the
            settings' embedder endpoint (Ollama: ``llm_ollama_base_url``), the operator's, is
            called as configured.
        api_key: Key of the openai-compatible endpoint, or the bearer token of a gateway in
            front of Ollama (e.g. from a workspace credential).

    Returns:
        A LangChain ``Embeddings`` exposing ``provider``, ``model_name`` and ``dimension``.

    Raises:
        UserError: Unknown provider, or a model the built-in provider cannot run.
    """
    ks = settings.knowledge
    provider = provider or ks.embedder
    if provider not in EMBEDDING_PROVIDERS:
        msg = (
            f"embedder provider {provider!r} is unknown; allowed: {', '.join(EMBEDDING_PROVIDERS)}"
        )
        raise UserError(msg, code="unknown_embedder", details={"provider": provider})
    same_provider = provider == ks.embedder
    model = model or (ks.embedder_model if same_provider else None) or DEFAULT_MODELS[provider]
    guarded = base_url is not None
    base_url = base_url or (ks.embedder_base_url if same_provider else None)
    if provider == "minilm":
        from socialflow.knowledge._minilm import MiniLMEmbeddings

        if model != DEFAULT_MODELS["minilm"]:
            msg = (
                f"embedder model {model!r} is not available for provider 'minilm'; "
                f"it runs only {DEFAULT_MODELS['minilm']!r}"
            )
            raise UserError(msg, code="unknown_embedder", details={"model": model})
        return MiniLMEmbeddings.shared(max_tokens=ks.embed_max_tokens)
    if provider == "openai":
        from langchain_openai import OpenAIEmbeddings
        from pydantic import SecretStr

        key = api_key or (ks.embedder_api_key.get_secret_value() if ks.embedder_api_key else None)
        clients: dict[str, Any] = {}
        if guarded:
            clients["http_client"], clients["http_async_client"] = guarded_clients(settings)
        inner: Embeddings = OpenAIEmbeddings(
            model=model,
            openai_api_base=base_url,
            openai_api_key=SecretStr(key) if key else None,
            chunk_size=ks.embed_batch_size,
            check_embedding_ctx_length=base_url is None,
            **clients,
        )
        return _RemoteEmbeddings(inner, provider="openai", model_name=model)
    from langchain_ollama import OllamaEmbeddings

    # a key is for a gateway in front of Ollama (Ollama itself takes none)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    inner = OllamaEmbeddings(
        model=model,
        base_url=base_url or ks.llm_ollama_base_url,
        client_kwargs={"headers": headers} if headers else {},
        **(guarded_ollama_kwargs(settings) if guarded else {}),
    )
    return _RemoteEmbeddings(inner, provider="ollama", model_name=model)
