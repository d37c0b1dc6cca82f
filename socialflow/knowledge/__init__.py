"""Knowledge bases: embeddings, vector stores, hybrid retrieval, ingestion and AI helpers."""

from socialflow.knowledge._embedded_store import EmbeddedStore
from socialflow.knowledge._embeddings import NamedEmbeddings, get_embeddings
from socialflow.knowledge._hybrid import reciprocal_rank_fusion
from socialflow.knowledge._ingest import (
    IngestContext,
    chunk_prefix,
    embeddings_for_base,
    ingest_document,
)
from socialflow.knowledge._llm import (
    ChatModel,
    CredentialChatModels,
    Usage,
    build_chat_model,
    map_llm_error,
    sum_usage,
)
from socialflow.knowledge._minilm import MiniLMEmbeddings
from socialflow.knowledge._models import Document, DocumentStatus, KnowledgeBase
from socialflow.knowledge._pinecone_store import PineconeStore
from socialflow.knowledge._queue import IngestWorker
from socialflow.knowledge._retriever import RetrievedChunk, StoreCache, WorkspaceRetriever
from socialflow.knowledge._storage import ObjectStorage
from socialflow.knowledge._store import (
    EmbedderMismatchError,
    KnowledgeStore,
    MetadataFilter,
    StoreInfo,
    open_store,
)

__all__ = [
    "ChatModel",
    "CredentialChatModels",
    "Document",
    "DocumentStatus",
    "EmbeddedStore",
    "EmbedderMismatchError",
    "IngestContext",
    "IngestWorker",
    "KnowledgeBase",
    "KnowledgeStore",
    "MetadataFilter",
    "MiniLMEmbeddings",
    "NamedEmbeddings",
    "ObjectStorage",
    "PineconeStore",
    "RetrievedChunk",
    "StoreCache",
    "StoreInfo",
    "Usage",
    "WorkspaceRetriever",
    "build_chat_model",
    "chunk_prefix",
    "embeddings_for_base",
    "get_embeddings",
    "ingest_document",
    "map_llm_error",
    "open_store",
    "reciprocal_rank_fusion",
    "sum_usage",
]
