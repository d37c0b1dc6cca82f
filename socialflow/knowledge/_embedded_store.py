"""The embedded vector store: one SQLite file per namespace, vectors plus BM25 term counts.

Each namespace lives in ``<store_path>/<namespace>.sqlite3`` (WAL mode, so several worker
processes can write and read at once). A chunk row holds its text, metadata (also indexed
as key/value rows for equality filters), its vector as a float32 blob and its BM25 term
counts. Each process keeps, per namespace, the vectors as a unit-normalised float32 matrix
(a dense query is one matrix-vector product) and an in-memory BM25 inverted index. A
``generation`` counter, bumped by every delete or replacement, tells a process to reload
them; plain appends are picked up incrementally by rowid.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from socialflow.core.errors import TransientError, UserError
from socialflow.knowledge._bm25 import terms_blob
from socialflow.knowledge._hybrid import HybridFusion
from socialflow.knowledge._snapshot import Snapshot
from socialflow.knowledge._store import (
    EmbedderMismatchError,
    KnowledgeStore,
    MetadataFilter,
    indexed_text,
    validate_filter,
)

__all__ = ["EmbeddedStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunk (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL,
    vector BLOB NOT NULL,
    terms BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS chunk_field (
    chunk INTEGER NOT NULL REFERENCES chunk(rowid),
    key TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunk_field_match ON chunk_field(key, value, chunk);
CREATE INDEX IF NOT EXISTS chunk_field_chunk ON chunk_field(chunk);
CREATE TRIGGER IF NOT EXISTS chunk_deleted AFTER DELETE ON chunk BEGIN
    DELETE FROM chunk_field WHERE chunk = old.rowid;
END;
INSERT OR IGNORE INTO meta(key, value) VALUES ('generation', '0');
"""
_MAX_CHAR = "\U0010ffff"
_SQL_VARS = 500


def _field_value(value: str | int | float | bool) -> str:
    """How a metadata value is indexed: JSON, so 1, 1.0, true and "1" stay apart."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return json.dumps(value, ensure_ascii=False)


_REGISTRY_LOCK = threading.Lock()
_LOCKS: dict[str, threading.RLock] = {}
_MATRICES: dict[str, Snapshot] = {}


class EmbeddedStore(KnowledgeStore):
    """Knowledge store in SQLite files: no server, no key, safe for several processes.

    Args:
        path: Folder holding one ``<namespace>.sqlite3`` file per namespace.
        namespace: The knowledge base.
        embeddings: The knowledge base's embedder.
        hybrid_candidates: Dense and BM25 candidates fused by ``hybrid_search``.
        fusion: How they are fused (default: ``HybridFusion()``).
    """

    def __init__(
        self,
        path: Path | str,
        *,
        namespace: str,
        embeddings: Embeddings,
        hybrid_candidates: int = 50,
        fusion: HybridFusion | None = None,
    ) -> None:
        super().__init__(
            namespace=namespace,
            embeddings=embeddings,
            hybrid_candidates=hybrid_candidates,
            fusion=fusion,
        )
        self.path = Path(path) / f"{namespace}.sqlite3"
        self._key = str(self.path.resolve())
        # one lock and one vector matrix per file and process, shared by every instance
        with _REGISTRY_LOCK:
            self._lock = _LOCKS.setdefault(self._key, threading.RLock())
        self._conn: sqlite3.Connection | None = None

    # -- connection and bookkeeping ------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=60, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=60000")
            ready = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'chunk_deleted'"
            ).fetchone()
            if not ready:
                conn.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}COMMIT;")
            self._conn = conn
        return self._conn

    def close(self) -> None:
        """Close this process's connection; the store reopens on next use."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding the file's write lock (other processes wait)."""
        with self._lock:
            conn = self._db()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                msg = f"knowledge store {self.path.name} stayed locked by another writer: {exc}"
                raise TransientError(msg) from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _meta(self, conn: sqlite3.Connection) -> dict[str, str]:
        return dict(conn.execute("SELECT key, value FROM meta").fetchall())

    def _recorded_embedder(self) -> tuple[str, int] | None:
        with self._lock:
            meta = self._meta(self._db())
        if "model_name" not in meta:
            return None
        return meta["model_name"], int(meta["dimension"])

    def _upsert(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        metadatas: Sequence[dict[str, Any]],
        vectors: Sequence[Sequence[float]],
        identity: tuple[str, int],
    ) -> None:
        array = np.asarray(vectors, dtype=np.float32)
        rows = [
            (
                id_,
                text,
                json.dumps(meta, ensure_ascii=False, default=str),
                array[i].tobytes(),
                terms_blob(indexed_text(text, meta)),
            )
            for i, (id_, text, meta) in enumerate(zip(ids, texts, metadatas, strict=True))
        ]
        with self._write() as conn:
            meta = self._meta(conn)
            if "model_name" not in meta:
                conn.executemany(
                    "INSERT INTO meta(key, value) VALUES (?, ?)",
                    [("model_name", identity[0]), ("dimension", str(identity[1]))],
                )
            elif (meta["model_name"], int(meta["dimension"])) != identity:
                recorded = (meta["model_name"], int(meta["dimension"]))
                raise EmbedderMismatchError(self.namespace, recorded=recorded, given=identity)
            replaced = self._delete_ids(conn, ids)
            for row, meta in zip(rows, metadatas, strict=True):
                cursor = conn.execute(
                    "INSERT INTO chunk(id, text, metadata, vector, terms) VALUES (?, ?, ?, ?, ?)",
                    row,
                )
                fields = [
                    (cursor.lastrowid, key, _field_value(value))
                    for key, value in meta.items()
                    if isinstance(value, str | int | float | bool)
                ]
                conn.executemany(
                    "INSERT INTO chunk_field(chunk, key, value) VALUES (?, ?, ?)", fields
                )
            if replaced:
                self._bump_generation(conn)

    @staticmethod
    def _delete_ids(conn: sqlite3.Connection, ids: Sequence[str]) -> int:
        deleted = 0
        for start in range(0, len(ids), _SQL_VARS):
            part = list(ids[start : start + _SQL_VARS])
            marks = ",".join("?" * len(part))
            sql = f"DELETE FROM chunk WHERE id IN ({marks})"
            deleted += conn.execute(sql, part).rowcount
        return deleted

    @staticmethod
    def _bump_generation(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")

    def _fresh_matrix(self, conn: sqlite3.Connection, dimension: int) -> Snapshot:
        """The vectors as of now: reloaded after deletes, extended after appends."""
        conn.execute("BEGIN")
        try:
            generation = int(
                conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]
            )
            matrix = _MATRICES.get(self._key)
            if matrix is None or matrix.generation != generation or matrix.dimension != dimension:
                matrix = Snapshot(dimension)
                matrix.generation = generation
            last = int(matrix.rowids[-1]) if len(matrix.rowids) else 0
            (newest,) = conn.execute("SELECT coalesce(max(rowid), 0) FROM chunk").fetchone()
            if newest > last:
                cursor = conn.execute(
                    "SELECT rowid, vector, terms FROM chunk WHERE rowid > ? ORDER BY rowid",
                    (last,),
                )
                while batch := cursor.fetchmany(20_000):
                    matrix.append(
                        [r[0] for r in batch], [r[1] for r in batch], [r[2] for r in batch]
                    )
        finally:
            conn.execute("COMMIT")
        _MATRICES[self._key] = matrix
        return matrix

    # -- searches ------------------------------------------------------------------------

    @staticmethod
    def _allowed(
        conn: sqlite3.Connection, matrix: Snapshot, filter: MetadataFilter
    ) -> npt.NDArray[np.intp]:
        """Matrix positions of the chunks whose metadata equals every field of ``filter``."""
        parts = " INTERSECT ".join(
            "SELECT chunk FROM chunk_field WHERE key = ? AND value = ?" for _ in filter
        )
        params = [x for key, value in filter.items() for x in (key, _field_value(value))]
        rowids = np.fromiter((r[0] for r in conn.execute(parts, params)), dtype=np.int64)
        rowids.sort()
        positions = np.searchsorted(matrix.rowids, rowids)
        valid = positions < matrix.size
        positions, rowids = positions[valid], rowids[valid]
        found: npt.NDArray[np.intp] = positions[matrix.rowids[positions] == rowids]
        return found

    def _documents(
        self, conn: sqlite3.Connection, scored: list[tuple[int, float]]
    ) -> list[tuple[Document, float]]:
        if not scored:
            return []
        marks = ",".join("?" * len(scored))
        rows = conn.execute(
            f"SELECT rowid, id, text, metadata FROM chunk WHERE rowid IN ({marks})",
            [rowid for rowid, _ in scored],
        ).fetchall()
        by_rowid = {
            r[0]: Document(id=r[1], page_content=r[2], metadata=json.loads(r[3])) for r in rows
        }
        return [(by_rowid[rowid], score) for rowid, score in scored if rowid in by_rowid]

    @staticmethod
    def _dense_rows(
        matrix: Snapshot, vector: Sequence[float], k: int, allowed: npt.NDArray[np.intp] | None
    ) -> list[tuple[int, float]]:
        """``(rowid, cosine)`` of the ``k`` nearest chunks among ``allowed`` positions."""
        query = np.asarray(vector, dtype=np.float32)
        query /= max(float(np.linalg.norm(query)), 1e-12)
        vectors, rowids = matrix.vectors, matrix.rowids
        if allowed is not None:
            vectors, rowids = vectors[allowed], rowids[allowed]
        if len(rowids) == 0:
            return []
        scores = vectors @ query
        top = min(k, len(scores))
        best = np.argpartition(-scores, top - 1)[:top]
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(int(rowids[i]), float(scores[i])) for i in best]

    def _search(
        self,
        *,
        query: str | None,
        vector: Sequence[float] | None,
        k: int,
        filter: MetadataFilter | None,
        dimension: int,
        fused: int = 0,
    ) -> list[tuple[Document, float]]:
        """Dense or BM25 search of ``k``; with both and ``fused``, the best ``fused`` of both.

        Only the rows returned are read from SQLite.
        """
        with self._lock:
            conn = self._db()
            matrix = self._fresh_matrix(conn, dimension)
            allowed = self._allowed(conn, matrix, filter) if filter else None
            dense = self._dense_rows(matrix, vector, k, allowed) if vector is not None else []
            keyword = []
            if query is not None:
                found = matrix.bm25.search(query, k, allowed)
                keyword = [(int(matrix.rowids[p]), score) for p, score in found]
            if fused:
                return self._documents(conn, self.fusion.fuse(dense, keyword, k=fused))
            return self._documents(conn, dense or keyword)

    def _dense_search(
        self,
        vector: Sequence[float],
        k: int,
        filter: MetadataFilter | None,
    ) -> list[tuple[Document, float]]:
        return self._search(query=None, vector=vector, k=k, filter=filter, dimension=len(vector))

    def _keyword_search(
        self,
        query: str,
        k: int,
        filter: MetadataFilter | None,
        dense: list[tuple[Document, float]],
    ) -> list[tuple[Document, float]]:
        recorded = self._recorded_embedder()
        if recorded is None:
            return []
        return self._search(query=query, vector=None, k=k, filter=filter, dimension=recorded[1])

    def hybrid_search_by_vector(
        self,
        query: str,
        vector: Sequence[float],
        k: int = 4,
        filter: MetadataFilter | None = None,
    ) -> list[tuple[Document, float]]:
        """Hybrid search fused on row ids, so only the ``k`` chunks returned are read."""
        filter = validate_filter(filter)
        n = max(self.hybrid_candidates, k)
        return self._search(
            query=query, vector=vector, k=n, filter=filter, dimension=len(vector), fused=k
        )

    # -- deletes, counts -----------------------------------------------------------------

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        """Delete records by id; True if any existed."""
        if not ids:
            return False
        with self._write() as conn:
            deleted = self._delete_ids(conn, ids)
            if deleted:
                self._bump_generation(conn)
        return deleted > 0

    def delete_prefix(self, prefix: str) -> int:
        """Delete every record whose id starts with ``prefix``; returns how many."""
        if not prefix:
            msg = "delete_prefix needs a non-empty prefix; use drop() to empty a namespace"
            raise UserError(msg, code="invalid_prefix")
        with self._write() as conn:
            deleted = conn.execute(
                "DELETE FROM chunk WHERE id >= ? AND id < ?", (prefix, prefix + _MAX_CHAR)
            ).rowcount
            if deleted:
                self._bump_generation(conn)
        return int(deleted)

    def drop(self) -> None:
        """Delete the namespace entirely: records and the recorded embedder."""
        with self._write() as conn:
            conn.execute("DELETE FROM chunk")
            conn.execute("DELETE FROM meta WHERE key IN ('model_name', 'dimension')")
            self._bump_generation(conn)
        _MATRICES.pop(self._key, None)

    def count(self, prefix: str | None = None) -> int:
        """Number of records, or of those whose id starts with ``prefix``."""
        with self._lock:
            conn = self._db()
            if prefix:
                row = conn.execute(
                    "SELECT count(*) FROM chunk WHERE id >= ? AND id < ?",
                    (prefix, prefix + _MAX_CHAR),
                ).fetchone()
            else:
                row = conn.execute("SELECT count(*) FROM chunk").fetchone()
        return int(row[0])

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The records with these ids (missing ones are skipped), in the order asked."""
        found: dict[str, Document] = {}
        with self._lock:
            conn = self._db()
            for start in range(0, len(ids), _SQL_VARS):
                part = list(ids[start : start + _SQL_VARS])
                marks = ",".join("?" * len(part))
                for id_, text, meta in conn.execute(
                    f"SELECT id, text, metadata FROM chunk WHERE id IN ({marks})",
                    part,
                ):
                    found[id_] = Document(id=id_, page_content=text, metadata=json.loads(meta))
        return [found[i] for i in ids if i in found]
