"""The built-in MiniLM embedder against a plain numpy reference, and the embedder factory."""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import load_file
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tokenizers import Tokenizer

from socialflow.core.errors import UserError
from socialflow.core.settings import Settings
from socialflow.knowledge import MiniLMEmbeddings, get_embeddings, model_dir
from tests.fixtures.asgi_server import serve_app

LONG = " ".join(
    f"Sentence {i} describes how mitochondria produce ATP through oxidative phosphorylation."
    for i in range(40)
)
TEXTS = [
    "A man is eating food.",
    "The new movie is awesome, I loved the soundtrack and the acting!",
    LONG,  # longer than 256 tokens: truncated
    "hi",
]


def _reference(texts: list[str]) -> np.ndarray:
    """BERT encoder + mean pooling + L2 norm, one text at a time, float64, exact erf GELU."""
    folder = model_dir()
    w = {k: v.astype(np.float64) for k, v in load_file(str(folder / "model.safetensors")).items()}
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=256)
    erf = np.vectorize(math.erf)

    def ln(x: np.ndarray, name: str) -> np.ndarray:
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-12) * w[f"{name}.weight"] + w[f"{name}.bias"]

    def dense(x: np.ndarray, name: str) -> np.ndarray:
        return x @ w[f"{name}.weight"].T + w[f"{name}.bias"]

    out = []
    for text in texts:
        ids = tok.encode(text).ids
        n = len(ids)
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:n]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = ln(x, "embeddings.LayerNorm")
        for i in range(6):
            p = f"encoder.layer.{i}"
            q = dense(x, f"{p}.attention.self.query").reshape(n, 12, 32).transpose(1, 0, 2)
            k = dense(x, f"{p}.attention.self.key").reshape(n, 12, 32).transpose(1, 0, 2)
            v = dense(x, f"{p}.attention.self.value").reshape(n, 12, 32).transpose(1, 0, 2)
            s = q @ k.transpose(0, 2, 1) / math.sqrt(32)
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            ctx = (s @ v).transpose(1, 0, 2).reshape(n, 384)
            x = ln(x + dense(ctx, f"{p}.attention.output.dense"), f"{p}.attention.output.LayerNorm")
            h = dense(x, f"{p}.intermediate.dense")
            h = h * 0.5 * (1 + erf(h / math.sqrt(2)))
            x = ln(x + dense(h, f"{p}.output.dense"), f"{p}.output.LayerNorm")
        pooled = x.mean(0)
        out.append(pooled / np.linalg.norm(pooled))
    return np.asarray(out)


def test_vectors_match_the_reference(minilm: MiniLMEmbeddings) -> None:
    ours = np.asarray(minilm.embed_documents(TEXTS))
    reference = _reference(TEXTS)
    assert ours.shape == (4, 384)
    cosines = (ours * reference).sum(1) / np.linalg.norm(ours, axis=1)
    assert cosines.min() >= 0.99999, cosines


def test_batching_and_order_do_not_change_vectors(minilm: MiniLMEmbeddings) -> None:
    texts = [f"{TEXTS[i % 4]} ({i})" for i in range(13)]
    together = minilm.embed_array(texts)
    one_by_one = np.asarray([minilm.embed_query(t) for t in texts])
    assert together.dtype == np.float32
    np.testing.assert_allclose(together, one_by_one, atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)


def test_related_sentences_rank_above_unrelated(minilm: MiniLMEmbeddings) -> None:
    docs = [
        "Plants use photosynthesis to turn sunlight, water and carbon dioxide into sugar.",
        "The central bank raised interest rates to slow inflation.",
        "Our store opens at nine and closes at six on weekdays.",
    ]
    matrix = minilm.embed_array(docs)
    for query, expected in [
        ("How do plants make their food?", 0),
        ("Why did borrowing costs go up?", 1),
        ("What are your opening hours?", 2),
    ]:
        scores = matrix @ np.asarray(minilm.embed_query(query))
        assert int(np.argmax(scores)) == expected, (query, scores)
    pair = minilm.embed_array(["A man is eating food.", "A man is eating a piece of bread."])
    other = minilm.embed_array(["The girl is carrying a baby."])
    assert float(pair[0] @ pair[1]) > float(pair[0] @ other[0]) + 0.5


def test_factory_returns_the_builtin_embedder(tmp_path) -> None:
    embedder = get_embeddings(Settings(data_dir=tmp_path))
    assert embedder.model_name == "all-MiniLM-L6-v2"
    assert embedder.dimension == 384
    assert embedder is get_embeddings(Settings(data_dir=tmp_path))  # weights load once


def test_factory_refuses_unknown_providers_and_models(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(UserError, match="allowed: minilm, openai, ollama"):
        get_embeddings(settings, provider="word2vec")
    with pytest.raises(UserError, match="not available for provider 'minilm'"):
        get_embeddings(settings, model="bge-small")


def _openai_compatible(seen: list[tuple[str, str | None, Any]]) -> Starlette:
    """POST /v1/embeddings as OpenAI serves it (float lists or base64 float32)."""

    async def embeddings(request: Request) -> Response:
        body = json.loads(await request.body())
        seen.append((request.url.path, request.headers.get("authorization"), body))
        data = []
        for i, text in enumerate(body["input"]):
            vector = np.zeros(8, dtype=np.float32)
            vector[len(text) % 8] = 1.0
            value: Any = vector.tolist()
            if body.get("encoding_format") == "base64":
                value = base64.b64encode(vector.tobytes()).decode()
            data.append({"object": "embedding", "index": i, "embedding": value})
        payload = json.dumps(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            }
        ).encode()
        return Response(payload, media_type="application/json")

    return Starlette(routes=[Route("/{path:path}", embeddings, methods=["POST"])])


def test_openai_compatible_provider(tmp_path) -> None:
    seen: list[tuple[str, str | None, Any]] = []
    with serve_app(_openai_compatible(seen)) as server:
        embedder = get_embeddings(
            # the local server's host allowed, as an operator does for one on their network
            Settings(data_dir=tmp_path, http={"allowed_hosts": ["127.0.0.1"]}),
            provider="openai",
            model="local-embedder",
            base_url=f"{server.url}/v1",
            api_key="sk-test",
        )
        assert embedder.model_name == "local-embedder"
        assert embedder.dimension == 8  # unknown model: measured with one call
        vectors = embedder.embed_documents(["abc", "abcd"])
        assert [v.index(1.0) for v in vectors] == [3, 4]
        path, auth, body = seen[-1]
        assert path == "/v1/embeddings" and auth == "Bearer sk-test"
        assert body["model"] == "local-embedder" and body["input"] == ["abc", "abcd"]
