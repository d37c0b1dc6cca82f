"""Ollama through the real clients (``ollama``, ``langchain_ollama``) against the scripted
server's native Ollama API: embeddings, chat models, and the intent classifier node."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ollama
import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from socialflow.core.errors import TransientError, UserError
from socialflow.core.settings import Settings
from socialflow.knowledge import CredentialChatModels, embedder_identity, get_embeddings
from socialflow.nodes.builtins.ai import IntentClassifierNode
from tests.fixtures.context import make_context
from tests.fixtures.llm_server import LOOPBACK_ALLOWED, ScriptedLLM, embed, serve_llm

MODEL = "llama3.2"
LABELS = [
    {"name": "question", "description": "Asks about products, prices, shipping or returns."},
    {"name": "complaint", "description": "Reports a problem or is unhappy."},
]


class StaticCredentials:
    """A credential resolver over fixed fields (the engine's one reads the database)."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    async def get(self, kind: str, name: str | None = None) -> dict[str, Any]:
        assert kind == "ollama"
        return self.fields


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with serve_llm(api_key="gateway-token") as server:
        yield server


def chat_models(server: ScriptedLLM, **fields: Any) -> CredentialChatModels:
    return CredentialChatModels(
        StaticCredentials({"base_url": server.ollama_url, **fields}),
        Settings(http=LOOPBACK_ALLOWED),
    )


def test_embeddings_come_back_with_their_dimension(llm: ScriptedLLM, tmp_path: Path) -> None:
    embedder = get_embeddings(
        Settings(data_dir=tmp_path, http=LOOPBACK_ALLOWED),
        provider="ollama",
        model="scripted-embed",
        base_url=llm.ollama_url,
        api_key="gateway-token",
    )
    vectors = embedder.embed_documents(["free shipping to Spain", "opening hours"])
    assert vectors == [
        pytest.approx(embed("free shipping to Spain")),
        pytest.approx(embed("opening hours")),
    ]
    assert embedder.embed_query("opening hours") == pytest.approx(embed("opening hours"))
    # an unlisted model's dimension is what the server returns
    assert embedder_identity(embedder) == ("scripted-embed", 64)
    (batch, query) = llm.bodies("/api/embed")
    assert batch["model"] == "scripted-embed"
    assert batch["input"] == ["free shipping to Spain", "opening hours"]
    assert query["input"] == ["opening hours"]
    headers = [r["headers"] for r in llm.requests if r["path"] == "/api/embed"]
    assert all(h["authorization"] == "Bearer gateway-token" for h in headers)


def test_the_server_speaks_ollamas_native_api(llm: ScriptedLLM) -> None:
    llm.script("hours", reply="We open at nine.")
    client = ollama.Client(host=llm.ollama_url)
    plain = client.chat(MODEL, [{"role": "user", "content": "hours?"}], stream=False)
    assert plain.message.content == "We open at nine."
    assert plain.done and (plain.prompt_eval_count, plain.eval_count) == (2, 4)
    parts = list(client.chat(MODEL, [{"role": "user", "content": "hours?"}], stream=True))
    assert "".join(p.message.content or "" for p in parts) == "We open at nine."
    assert [p.done for p in parts] == [False] * (len(parts) - 1) + [True]
    assert parts[-1].eval_count == 4
    assert client.embeddings(model="scripted-embed", prompt="mug").embedding == pytest.approx(
        embed("mug")
    )
    assert {m.model for m in client.list().models} >= {MODEL}
    llm.script("missing", status=404)
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(MODEL, [{"role": "user", "content": "missing"}], stream=False)
    assert caught.value.status_code == 404 and caught.value.error == "scripted error 404"
    refused = ollama.Client(host=llm.ollama_url, headers={"Authorization": "Bearer wrong"})
    with pytest.raises(ollama.ResponseError) as caught:
        refused.embed(model="scripted-embed", input="x")
    assert caught.value.status_code == 401


async def test_chat_model_answers_with_usage_streamed_or_not(llm: ScriptedLLM) -> None:
    llm.script("opening hours", reply="We open at nine.")
    chat = await chat_models(llm).get(
        "ollama", credential="Local", model=MODEL, temperature=0.3, max_tokens=64
    )
    messages = [SystemMessage("Be brief."), HumanMessage("What are your opening hours?")]
    for stream in (False, True):
        answer = await chat.invoke(messages, stream=stream)
        assert answer.content == "We open at nine."
        usage = chat.usage(answer)
        # the server counts words: "system: Be brief." + "user: What are your opening hours?"
        assert (usage.calls, usage.input_tokens, usage.output_tokens) == (1, 9, 4)
        assert usage.cost_usd == 0 and usage.unpriced_calls == 0  # a local model is free
    sent = llm.bodies("/api/chat")[0]
    assert sent["model"] == MODEL
    assert sent["messages"][0]["role"] == "system" and sent["messages"][0]["content"] == "Be brief."
    assert sent["options"]["temperature"] == 0.3 and sent["options"]["num_predict"] == 64
    assert all(r["headers"].get("authorization") is None for r in llm.requests)


async def test_tools_json_mode_and_errors(llm: ScriptedLLM) -> None:
    llm.script("route", tool_call={"arguments": {"label": "refund"}})
    llm.script("json please", json={"label": "question"})
    llm.script("busy", status=503)
    llm.script("unknown model", status=404)
    chat = await chat_models(llm, api_key="gateway-token").get("ollama", credential="Gateway")
    tool = {
        "type": "function",
        "function": {"name": "classify", "parameters": {"type": "object", "properties": {}}},
    }
    called = await chat.invoke([HumanMessage("route this")], tools=[tool], tool_choice="classify")
    calls = [(c["name"], c["args"]) for c in called.tool_calls]
    assert calls == [("classify", {"label": "refund"})]
    assert llm.bodies("/api/chat")[0]["tools"][0]["function"]["name"] == "classify"
    answered = await chat.invoke([HumanMessage("json please")], json_mode=True)
    assert answered.content == '{"label": "question"}'
    assert llm.bodies("/api/chat")[1]["format"] == "json"
    assert llm.requests[0]["headers"]["authorization"] == "Bearer gateway-token"
    with pytest.raises(TransientError) as busy:
        await chat.invoke([HumanMessage("busy")])
    assert busy.value.code == "llm_unavailable"
    with pytest.raises(UserError) as missing:
        await chat.invoke([HumanMessage("unknown model")])
    assert missing.value.code == "llm_bad_request"
    assert "credential 'Gateway' (ollama)" in missing.value.message


@pytest.mark.parametrize(
    ("method", "behaviour", "port"),
    [
        ("tool_calling", {"tool_call": {"arguments": {"label": "complaint"}}}, "complaint"),
        ("tool_calling", {"tool_call": {"arguments": {"label": "sales_lead"}}}, "other"),
        # a model that ignores the tools and answers JSON in words still routes
        ("tool_calling", {"reply": '{"label": "question", "reason": "asks"}'}, "question"),
        ("json_mode", {"json": {"label": "complaint", "reason": "unhappy"}}, "complaint"),
        ("json_mode", {"reply": "not json at all"}, "other"),
        ("prompt", {"reply": "Question."}, "question"),
    ],
)
async def test_intent_classifier_on_ollama(
    llm: ScriptedLLM, method: str, behaviour: dict[str, Any], port: str
) -> None:
    llm.script("my mug arrived broken", **behaviour)
    config = {"labels": LABELS, "method": method, "provider": "ollama", "credential": "Local"}
    classifier = IntentClassifierNode(IntentClassifierNode.Config.model_validate(config))
    ctx = make_context(trigger={"text": "My mug arrived broken"})
    ctx.llm = chat_models(llm)
    ctx.retriever = None

    result = await classifier.run(ctx, **{"in": {"comment": 1}})

    assert set(result) == {port}
    value = result[port]
    assert value["label"] == port and value["input"] == {"comment": 1}
    assert value["usage"]["provider"] == "ollama" and value["usage"]["calls"] == 1
    assert value["usage"]["input_tokens"] > 0 and value["usage"]["cost_usd"] == 0
    (sent,) = llm.bodies("/api/chat")
    if method == "tool_calling":
        enum = sent["tools"][0]["function"]["parameters"]["properties"]["label"]["enum"]
        assert enum == ["question", "complaint", "other"]
    assert sent.get("format") == ("json" if method == "json_mode" else None)
