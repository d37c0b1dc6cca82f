"""A process's in-memory copy of one embedded-store namespace, for fast searches."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from socialflow.knowledge._bm25 import BM25Index

__all__ = ["Snapshot"]


class Snapshot:
    """This process's copy of a namespace: unit-normalised vectors and BM25 index, by rowid.

    Appends go into spare capacity (doubled when full), so picking up another process's
    new chunks does not copy the whole matrix each time.
    """

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self.generation = -1
        self.size = 0
        self._rowids = np.empty(0, dtype=np.int64)
        self._vectors = np.empty((0, dimension), dtype=np.float32)
        self.bm25 = BM25Index()

    @property
    def rowids(self) -> npt.NDArray[np.int64]:
        """SQLite rowids of the chunks, ascending; position i is row i of ``vectors``."""
        return self._rowids[: self.size]

    @property
    def vectors(self) -> npt.NDArray[np.float32]:
        """The unit-length float32 vectors, one row per chunk."""
        return self._vectors[: self.size]

    def append(self, rowids: list[int], blobs: list[bytes], terms: list[bytes]) -> None:
        """Add chunks with higher rowids: float32 vector blobs and ``terms_blob`` outputs."""
        if not rowids:
            return
        self.bm25.append(terms)
        new = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), -1)
        norms = np.linalg.norm(new, axis=1, keepdims=True)
        needed = self.size + len(rowids)
        if needed > len(self._rowids):
            capacity = max(needed, 2 * len(self._rowids), 1024)
            grown = np.empty((capacity, self.dimension), dtype=np.float32)
            grown[: self.size] = self.vectors
            grown_ids = np.empty(capacity, dtype=np.int64)
            grown_ids[: self.size] = self.rowids
            self._vectors, self._rowids = grown, grown_ids
        np.divide(new, np.maximum(norms, np.float32(1e-12)), out=self._vectors[self.size : needed])
        self._rowids[self.size : needed] = rowids
        self.size = needed
