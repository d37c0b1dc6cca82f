"""Shared pieces of the retrieval benches: BEIR sets, documents chunked the way ingestion chunks
them, cached embeddings, an embedded store built from them, and the ranking metrics.

Not a benchmark itself (the leading underscore keeps it out of ``bench/*.py`` listings).
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from socialflow.core.settings import Settings  # noqa: E402
from socialflow.knowledge import (  # noqa: E402
    CONTEXT_FIELD,
    EmbeddedStore,
    MiniLMEmbeddings,
    chunk_metadata,
    indexed_text,
    parse,
    sniff,
    split_document,
)

SHARED_DATA = Path("/work/shared/data")
REPO_DATA = ROOT / "bench" / "data"
CACHE = ROOT / ".cache" / "bench"

Qrels = dict[str, dict[str, int]]


def data_dir(name: str) -> Path:
    """A data set's folder: ``/work/shared/data/<name>``, else the copy in ``bench/data``."""
    for parent in (SHARED_DATA, REPO_DATA):
        if (parent / name / "corpus.jsonl").exists():
            return parent / name
    sys.exit(f"data set {name!r} not found in {SHARED_DATA} or {REPO_DATA}")


def load_corpus(folder: Path) -> dict[str, tuple[str, str]]:
    """Documents by id: ``(title, text)``."""
    corpus: dict[str, tuple[str, str]] = {}
    for line in (folder / "corpus.jsonl").read_text().splitlines():
        doc = json.loads(line)
        corpus[doc["_id"]] = (doc.get("title", "").strip(), doc["text"].strip())
    return corpus


def load_split(folder: Path, split: str) -> tuple[dict[str, str], Qrels]:
    """Answerable queries of ``split`` and their graded relevant documents.

    The queries are ``queries-<split>.jsonl`` when that file exists (SciFact's train split),
    else those of ``queries.jsonl`` that have qrels in ``qrels/<split>.tsv``.
    """
    rfile = folder / "qrels" / f"{split}.tsv"
    own = folder / f"queries-{split}.jsonl"
    qfile = own if own.exists() else folder / "queries.jsonl"
    if not rfile.exists():
        sys.exit(f"{split} split missing: {rfile} (see {folder.parent}/README.md)")
    qrels: Qrels = {}
    for line in rfile.read_text().splitlines()[1:]:
        qid, did, score = line.split("\t")
        if int(score) > 0:
            qrels.setdefault(qid, {})[did] = int(score)
    queries = {}
    for line in qfile.read_text().splitlines():
        q = json.loads(line)
        if q["_id"] in qrels:
            queries[q["_id"]] = q["text"]
    return queries, qrels


def load_unanswerable(folder: Path, split: str) -> dict[str, str]:
    """Queries of ``split`` marked ``metadata.answerable: false`` (none in most sets)."""
    found = {}
    for line in (folder / "queries.jsonl").read_text().splitlines():
        q = json.loads(line)
        meta = q.get("metadata") or {}
        if meta.get("answerable") is False and meta.get("split") == split:
            found[q["_id"]] = q["text"]
    return found


@dataclass
class Collection:
    """What a store holds for a set: chunk ids, their document, shown text and metadata."""

    name: str
    ids: list[str]
    doc_of: dict[str, str]
    texts: list[str]
    metadatas: list[dict[str, Any]]

    @property
    def indexed(self) -> list[str]:
        """What is embedded and indexed per chunk (the context first, where there is one)."""
        return [indexed_text(t, m) for t, m in zip(self.texts, self.metadatas, strict=True)]


def one_record_per_document(name: str, corpus: dict[str, tuple[str, str]]) -> Collection:
    """Every document one record, ``title. text`` (how SciFact is indexed in BEIR)."""
    ids = list(corpus)
    texts = [f"{corpus[d][0]}. {corpus[d][1]}".strip() for d in ids]
    return Collection(name, ids, {d: d for d in ids}, texts, [{"doc": d} for d in ids])


def ingested(
    name: str, corpus: dict[str, tuple[str, str]], *, context: bool, settings: Settings
) -> Collection:
    """Every document uploaded as ``<id>.txt`` (title, blank line, text) and chunked as the
    ingestion flow chunks it (``sniff``, ``parse``, ``split_document``, ``chunk_metadata``);
    without ``context`` the chunks' context field is dropped, as before chunks had one."""
    ids: list[str] = []
    doc_of: dict[str, str] = {}
    texts: list[str] = []
    metadatas: list[dict[str, Any]] = []
    for doc_id, (title, body) in corpus.items():
        filename = f"{doc_id}.txt"
        data = f"{title}\n\n{body}\n".encode()
        kind, _ = sniff(filename, data[:1024])
        text = parse(data, kind)
        sha = hashlib.sha256(data).hexdigest()
        for n, chunk in enumerate(split_document(text, filename, settings)):
            meta = chunk_metadata(chunk, n, document_id=doc_id, sha256=sha, filename=filename)
            meta["doc"] = doc_id
            if not context:
                meta.pop(CONTEXT_FIELD)
            chunk_id = f"{sha}#{n}"
            ids.append(chunk_id)
            doc_of[chunk_id] = doc_id
            texts.append(chunk.text)
            metadatas.append(meta)
    return Collection(name, ids, doc_of, texts, metadatas)


def cached_embeddings(model: MiniLMEmbeddings, texts: list[str], label: str) -> np.ndarray:
    """Embeddings of ``texts``, from ``.cache/bench`` when the model and texts are unchanged."""
    digest = hashlib.sha256()
    digest.update(f"{model.model_name}/{model.max_tokens}".encode())
    for text in texts:
        digest.update(hashlib.sha256(text.encode()).digest())
    path = CACHE / f"{label}-{digest.hexdigest()[:16]}.npy"
    if path.exists():
        return np.load(path)
    # texts already embedded for another label (the first chunks, identical with and without
    # context) are looked up by their own hash, so only new texts are embedded
    known = _VECTORS
    missing = [t for t in dict.fromkeys(texts) if _key(model, t) not in known]
    if missing:
        print(f"embedding {len(missing)} {label} texts (cached in {CACHE})", file=sys.stderr)
        started = time.perf_counter()
        vectors = model.embed_array(missing)
        print(f"  {len(missing) / (time.perf_counter() - started):.1f} texts/s", file=sys.stderr)
        for text, vector in zip(missing, vectors, strict=True):
            known[_key(model, text)] = vector
    out = np.stack([known[_key(model, t)] for t in texts]) if texts else np.empty((0, 384))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, out.astype(np.float32))
    return out.astype(np.float32)


#: vectors embedded in this process, by model and text
_VECTORS: dict[str, np.ndarray] = {}


def _key(model: MiniLMEmbeddings, text: str) -> str:
    return hashlib.sha256(f"{model.model_name}/{model.max_tokens}/{text}".encode()).hexdigest()


def build_store(
    folder: Path, collection: Collection, vectors: np.ndarray, model: MiniLMEmbeddings
) -> EmbeddedStore:
    """An embedded store in ``folder`` holding the collection with precomputed vectors."""
    namespace = collection.name.replace("+", "-")  # a store namespace has no "+"
    store = EmbeddedStore(folder, namespace=namespace, embeddings=model)
    identity = (model.model_name, model.dimension)
    for start in range(0, len(collection.ids), 1000):
        stop = start + 1000
        store._upsert(
            collection.ids[start:stop],
            collection.texts[start:stop],
            collection.metadatas[start:stop],
            vectors[start:stop],
            identity,
        )
    return store


def metrics(ranked: Sequence[str], relevant: dict[str, int]) -> tuple[float, float, float, float]:
    """Recall@1, Recall@5, MRR@10 and nDCG@10 (graded gains, BEIR's definition) of a ranking."""
    recall1 = sum(1 for d in ranked[:1] if d in relevant) / len(relevant)
    recall5 = sum(1 for d in ranked[:5] if d in relevant) / len(relevant)
    mrr = next((1 / (i + 1) for i, d in enumerate(ranked[:10]) if d in relevant), 0.0)
    dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
    ideal = sorted(relevant.values(), reverse=True)[:10]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return recall1, recall5, mrr, dcg / idcg


def documents(ranked_chunks: Sequence[str], doc_of: dict[str, str]) -> list[str]:
    """A chunk ranking turned into a document ranking: each document at its best chunk."""
    return list(dict.fromkeys(doc_of[c] for c in ranked_chunks))
