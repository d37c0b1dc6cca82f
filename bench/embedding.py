"""Embedding throughput of the built-in MiniLM embedder against a straightforward numpy port.

Both run all-MiniLM-L6-v2 from the packaged safetensors on the same SciFact passages (title +
abstract, 256 tokens at most, as sentence-transformers does), in alternating rounds:

- baseline, the straightforward port: texts in the given order, batches of 32 padded to
  256 tokens, separate Q/K/V products, the padding mask always applied, GELU through a
  float32 erf polynomial, OpenBLAS's own threads;
- default: the shipped embedder (texts sorted by length, batches of 8 padded to their
  longest, fused QKV product, tanh GELU, one batch per core with single-threaded BLAS).

Prints passages/s, the ratio to the baseline, the smallest cosine between the two outputs,
and the p50 latency of embedding one short query.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._harness import print_table  # noqa: E402
from socialflow.knowledge import MiniLMEmbeddings, model_dir  # noqa: E402

DATA = Path("/work/shared/data/scifact")


class NaiveMiniLM:
    """The same model as a first numpy port would write it."""

    def __init__(self, max_tokens: int = 256, batch_size: int = 32) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.w = load_file(str(model_dir() / "model.safetensors"))
        self.tok = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
        self.tok.enable_truncation(max_length=max_tokens)
        self.tok.enable_padding(length=max_tokens)
        self.batch_size = batch_size

    def _ln(self, x: np.ndarray, name: str) -> np.ndarray:
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-12) * self.w[name + ".weight"] + self.w[name + ".bias"]

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[name + ".weight"].T + self.w[name + ".bias"]

    @staticmethod
    def _erf(x: np.ndarray) -> np.ndarray:
        t = 1.0 / (1.0 + 0.3275911 * np.abs(x))
        y = 1.0 - (
            ((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t
            + 0.254829592
        ) * t * np.exp(-x * x)
        return np.sign(x) * y

    def embed(self, texts: list[str]) -> np.ndarray:
        out = []
        for start in range(0, len(texts), self.batch_size):
            enc = self.tok.encode_batch(texts[start : start + self.batch_size])
            ids = np.array([e.ids for e in enc])
            mask = np.array([e.attention_mask for e in enc], dtype=np.float32)
            b, n = ids.shape
            x = (
                self.w["embeddings.word_embeddings.weight"][ids]
                + self.w["embeddings.position_embeddings.weight"][:n]
                + self.w["embeddings.token_type_embeddings.weight"][0]
            )
            x = self._ln(x, "embeddings.LayerNorm")
            bias = (1.0 - mask)[:, None, None, :] * -1e9
            for i in range(6):
                p = f"encoder.layer.{i}"

                q, k, v = (
                    self._dense(x, f"{p}.attention.self.{name}")
                    .reshape(b, n, 12, 32)
                    .transpose(0, 2, 1, 3)
                    for name in ("query", "key", "value")
                )
                s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(32) + bias
                s = np.exp(s - s.max(-1, keepdims=True))
                s = s / s.sum(-1, keepdims=True)
                ctx = (s @ v).transpose(0, 2, 1, 3).reshape(b, n, 384)
                x = self._ln(
                    x + self._dense(ctx, f"{p}.attention.output.dense"),
                    f"{p}.attention.output.LayerNorm",
                )
                h = self._dense(x, f"{p}.intermediate.dense")
                h = h * 0.5 * (1.0 + self._erf(h / math.sqrt(2)))
                x = self._ln(x + self._dense(h, f"{p}.output.dense"), f"{p}.output.LayerNorm")
            pooled = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
            out.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
        return np.concatenate(out)


def main() -> None:
    """Embed the same passages with both, alternating, and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passages", type=int, default=192, help="passages per round")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds")
    args = parser.parse_args()
    lines = (DATA / "corpus.jsonl").read_text().splitlines()[: args.passages]
    texts = [f"{d['title']}. {d['text']}" for d in map(json.loads, lines)]

    default, naive = MiniLMEmbeddings.shared(), NaiveMiniLM()
    default.embed_array(texts[:16])  # warm up both (thread pool, allocations)
    naive.embed(texts[:4])
    rates: dict[str, list[float]] = {"numpy port (baseline)": [], "default": []}
    outputs: dict[str, np.ndarray] = {}
    for _ in range(args.rounds):
        for name, run in (("numpy port (baseline)", naive.embed), ("default", default.embed_array)):
            started = time.perf_counter()
            outputs[name] = run(texts)
            rates[name].append(len(texts) / (time.perf_counter() - started))
    cosine = float((outputs["default"] * outputs["numpy port (baseline)"]).sum(1).min())
    query = "Does vitamin D lower the risk of fractures?"
    latency = {}
    for name, run in (("numpy port (baseline)", naive.embed), ("default", default.embed_array)):
        samples = []
        for _ in range(20):
            started = time.perf_counter()
            run([query])
            samples.append((time.perf_counter() - started) * 1000)
        latency[name] = statistics.median(samples)
    base = statistics.median(rates["numpy port (baseline)"])
    print_table(
        f"all-MiniLM-L6-v2, {len(texts)} SciFact passages x {args.rounds} rounds "
        f"(min cosine default vs baseline: {cosine:.6f})",
        ["embedder", "passages/s", "x baseline", "1 query p50 ms"],
        [
            [
                name,
                f"{statistics.median(r):.1f}",
                f"{statistics.median(r) / base:.2f}",
                f"{latency[name]:.1f}",
            ]
            for name, r in rates.items()
        ],
    )


if __name__ == "__main__":
    main()
