"""Knowledge bases: embeddings, vector stores, hybrid retrieval, ingestion and AI helpers."""

from socialflow.knowledge._calibration import (
    CALIBRATIONS,
    UNCALIBRATED_THRESHOLD,
    RefusalCalibration,
    refusal_threshold,
)
from socialflow.knowledge._embedded_store import EmbeddedStore
from socialflow.knowledge._embeddings import NamedEmbeddings, get_embeddings
from socialflow.knowledge._hybrid import (
    DEFAULT_DENSE_WEIGHT,
    DEFAULT_NORMALISATION,
    HybridFusion,
    Normalisation,
    convex_fusion,
    fuse_ranks,
    reciprocal_rank_fusion,
)
from socialflow.knowledge._ingest import (
    IngestContext,
    chunk_metadata,
    chunk_prefix,
    embeddings_for_base,
    ingest_document,
    remove_document_data,
    set_ingest_context,
    split_document,
)
from socialflow.knowledge._llm import (
    ChatModel,
    CredentialChatModels,
    Usage,
    build_chat_model,
    map_llm_error,
    sum_usage,
)
from socialflow.knowledge._minilm import MiniLMEmbeddings, model_dir
from socialflow.knowledge._models import Document, DocumentStatus, KnowledgeBase
from socialflow.knowledge._parse import UnsupportedDocumentError, parse, sniff
from socialflow.knowledge._pinecone_store import PineconeStore
from socialflow.knowledge._queue import IngestWorker
from socialflow.knowledge._retriever import RetrievedChunk, StoreCache, WorkspaceRetriever
from socialflow.knowledge._split import Chunk, document_title, split_markdown
from socialflow.knowledge._storage import ObjectStorage
from socialflow.knowledge._store import (
    CONTEXT_FIELD,
    EmbedderMismatchError,
    KnowledgeStore,
    MetadataFilter,
    StoreInfo,
    embedder_identity,
    indexed_text,
    open_store,
)

__all__ = [
    "CALIBRATIONS",
    "CONTEXT_FIELD",
    "DEFAULT_DENSE_WEIGHT",
    "DEFAULT_NORMALISATION",
    "UNCALIBRATED_THRESHOLD",
    "ChatModel",
    "Chunk",
    "CredentialChatModels",
    "Document",
    "DocumentStatus",
    "EmbeddedStore",
    "EmbedderMismatchError",
    "HybridFusion",
    "IngestContext",
    "IngestWorker",
    "KnowledgeBase",
    "KnowledgeStore",
    "MetadataFilter",
    "MiniLMEmbeddings",
    "NamedEmbeddings",
    "Normalisation",
    "ObjectStorage",
    "PineconeStore",
    "RefusalCalibration",
    "RetrievedChunk",
    "StoreCache",
    "StoreInfo",
    "UnsupportedDocumentError",
    "Usage",
    "WorkspaceRetriever",
    "build_chat_model",
    "chunk_metadata",
    "chunk_prefix",
    "convex_fusion",
    "document_title",
    "embedder_identity",
    "embeddings_for_base",
    "fuse_ranks",
    "get_embeddings",
    "indexed_text",
    "ingest_document",
    "map_llm_error",
    "model_dir",
    "open_store",
    "parse",
    "reciprocal_rank_fusion",
    "refusal_threshold",
    "remove_document_data",
    "set_ingest_context",
    "sniff",
    "split_document",
    "split_markdown",
    "sum_usage",
]
