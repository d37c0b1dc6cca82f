"""BM25 keyword search: an in-memory inverted index over hashed terms, and candidate re-ranking.

Texts become terms by lower-casing, splitting on word characters, dropping English
stopwords and Snowball (Porter 2) stemming; terms are hashed to 22 bits so that a chunk's term
counts can be stored with it (``terms_blob``) and loaded back without re-tokenising.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter

import numpy as np
import numpy.typing as npt
import Stemmer  # type: ignore[import-not-found]

__all__ = ["STOPWORDS", "BM25Index", "bm25_rank", "query_terms", "terms_blob"]

# Frequent English words: they match nearly every chunk and add little to BM25.
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is
    it its itself just me more most my myself no nor not now of off on once only or other our
    ours ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we
    were what when where which while who whom why will with would you your yours yourself
    yourselves""".split()
)
_WORD = re.compile(r"\w+", re.UNICODE)
_HASH_MASK = (1 << 22) - 1
K1 = 1.2
B = 0.75


_STEMMER = Stemmer.Stemmer("english")  # Snowball (Porter 2), with its own word cache


def _words(text: str) -> list[str]:
    """Stemmed words of ``text`` without stopwords, in order."""
    words = [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]
    stems: list[str] = _STEMMER.stemWords(words)
    return stems


def query_terms(text: str) -> list[str]:
    """Distinct normalised terms of ``text`` without stopwords, in order of appearance."""
    return list(dict.fromkeys(_words(text)))


def _hash(term: str) -> int:
    return zlib.crc32(term.encode()) & _HASH_MASK


def terms_blob(text: str) -> bytes:
    """A chunk's term counts as int32 ``(term hash, count)`` pairs, for storing with it."""
    counts = Counter(_hash(term) for term in _words(text))
    return np.asarray(list(counts.items()), dtype=np.int32).reshape(-1).tobytes()


class BM25Index:
    """BM25 (k1 = 1.2, b = 0.75) over the chunks of one namespace, positions as given.

    Postings are kept sorted by term; appends go to a tail that is merged on the next search.
    """

    def __init__(self) -> None:
        self.size = 0
        self._lengths = np.empty(0, dtype=np.float32)
        self._parts: list[tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]] = []
        self._terms = np.empty(0, dtype=np.int32)
        self._docs = np.empty(0, dtype=np.int32)
        self._tfs = np.empty(0, dtype=np.float32)

    def append(self, blobs: list[bytes]) -> None:
        """Add chunks (``terms_blob`` outputs) at the next positions."""
        if not blobs:
            return
        pairs = np.frombuffer(b"".join(blobs), dtype=np.int32).reshape(-1, 2)
        per_doc = np.fromiter((len(b) // 8 for b in blobs), dtype=np.int64, count=len(blobs))
        docs = np.repeat(np.arange(self.size, self.size + len(blobs), dtype=np.int32), per_doc)
        lengths = np.bincount(docs - self.size, weights=pairs[:, 1], minlength=len(blobs))
        self._lengths = np.concatenate([self._lengths, lengths.astype(np.float32)])
        self._parts.append((pairs, docs))
        self.size += len(blobs)

    def _merge(self) -> None:
        if not self._parts:
            return
        terms = [self._terms, *(p[:, 0] for p, _ in self._parts)]
        docs = [self._docs, *(d for _, d in self._parts)]
        tfs = [self._tfs, *(p[:, 1].astype(np.float32) for p, _ in self._parts)]
        all_terms = np.concatenate(terms)
        order = np.argsort(all_terms, kind="stable")
        self._terms = all_terms[order]
        self._docs = np.concatenate(docs)[order]
        self._tfs = np.concatenate(tfs)[order]
        self._parts = []

    def search(
        self, query: str, k: int, allowed: npt.NDArray[np.intp] | None = None
    ) -> list[tuple[int, float]]:
        """Best ``(position, score)`` pairs for ``query``, positive scores only, best first.

        Args:
            query: The question.
            k: How many results at most.
            allowed: Positions a metadata filter kept; all when None.
        """
        self._merge()
        hashes = sorted({_hash(term) for term in query_terms(query)})
        if not hashes or self.size == 0:
            return []
        n = self.size
        average = float(self._lengths.mean()) or 1.0
        norm = K1 * (1 - B + B * self._lengths / average)
        scores = np.zeros(n, dtype=np.float32)
        bounds = np.searchsorted(self._terms, np.asarray(hashes, dtype=np.int32))
        ends = np.searchsorted(self._terms, np.asarray(hashes, dtype=np.int32), side="right")
        for start, end in zip(bounds.tolist(), ends.tolist(), strict=True):
            if start == end:
                continue
            docs, tf = self._docs[start:end], self._tfs[start:end]
            idf = np.log1p((n - (end - start) + 0.5) / ((end - start) + 0.5))
            scores[docs] += np.float32(idf) * tf * (K1 + 1) / (tf + norm[docs])
        if allowed is not None:
            scores = scores[allowed]
        top = min(k, int(np.count_nonzero(scores)))
        if top == 0:
            return []
        best = np.argpartition(-scores, top - 1)[:top]
        best = best[np.argsort(-scores[best], kind="stable")]
        positions = allowed[best] if allowed is not None else best
        return [(int(p), float(scores[i])) for p, i in zip(positions, best, strict=True)]


def bm25_rank(query: str, texts: list[str]) -> list[tuple[int, float]]:
    """BM25 of ``texts`` for ``query`` with statistics from ``texts`` alone, best first.

    Used where the store cannot search keywords itself (Pinecone): it re-ranks the dense
    candidates. Returns ``(position, score)`` for texts with a positive score.
    """
    index = BM25Index()
    index.append([terms_blob(text) for text in texts])
    return index.search(query, len(texts))
