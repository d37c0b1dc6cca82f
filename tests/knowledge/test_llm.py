"""Chat models from credentials, through the real LangChain clients against a loopback server."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from socialflow.core.errors import TransientError, UserError
from socialflow.core.settings import Settings
from socialflow.knowledge._llm import (
    ChatModel,
    CredentialChatModels,
    Usage,
    build_chat_model,
    price_of,
    sum_usage,
)
from tests.fixtures.llm_server import LOOPBACK_ALLOWED, ScriptedLLM, allowing_loopback, serve_llm


class StaticCredentials:
    """A credential resolver over fixed fields (the engine's one reads the database)."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields
        self.asked: list[tuple[str, str | None]] = []

    async def get(self, kind: str, name: str | None = None) -> dict[str, Any]:
        self.asked.append((kind, name))
        return self.fields


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with serve_llm() as server:
        yield server


def models(server: ScriptedLLM, settings: Settings | None = None, **fields: Any) -> Any:
    secret = {"api_key": "sk-test-key", "base_url": server.url, **fields}
    return CredentialChatModels(
        StaticCredentials(secret), allowing_loopback(settings or Settings())
    )


async def test_invoke_returns_text_usage_and_cost(llm: ScriptedLLM) -> None:
    llm.script("opening hours", reply="We open at nine.")
    chat = await models(llm).get("openai", credential="Main", model="gpt-4o-mini")
    answer = await chat.invoke(
        [SystemMessage("Be brief."), HumanMessage("What are your opening hours?")]
    )
    assert answer.content == "We open at nine."
    usage = chat.usage(answer)
    # the server counts words: "system: Be brief." + "user: What are your opening hours?"
    assert (usage.input_tokens, usage.output_tokens) == (9, 4)
    assert usage.cost_usd == pytest.approx((9 * 0.15 + 4 * 0.60) / 1_000_000)
    sent = llm.chat_requests[0]
    assert sent["model"] == "gpt-4o-mini"
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["temperature"] == 0.2 and sent["max_completion_tokens"] == 512


async def test_streamed_answer_is_joined_with_its_usage(llm: ScriptedLLM) -> None:
    llm.script(reply="one two three four five")
    chat = await models(llm).get("openai", model="gpt-4o", temperature=0.7, max_tokens=20)
    answer = await chat.invoke([HumanMessage("count")], stream=True)
    assert answer.content == "one two three four five"
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["output_tokens"] == 5
    sent = llm.chat_requests[0]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert (sent["temperature"], sent["max_completion_tokens"]) == (0.7, 20)


async def test_tool_call_and_json_mode_reach_the_server(llm: ScriptedLLM) -> None:
    llm.script("route", tool_call={"arguments": {"label": "refund"}})
    llm.script("json please", json={"label": "question"})
    chat = await models(llm).get("openai")
    tool = {
        "type": "function",
        "function": {"name": "classify", "parameters": {"type": "object", "properties": {}}},
    }
    called = await chat.invoke([HumanMessage("route this")], tools=[tool], tool_choice="classify")
    assert called.tool_calls[0]["name"] == "classify"
    assert called.tool_calls[0]["args"] == {"label": "refund"}
    assert llm.chat_requests[0]["tool_choice"] == {
        "type": "function",
        "function": {"name": "classify"},
    }
    answered = await chat.invoke([HumanMessage("json please")], json_mode=True)
    assert answered.content == '{"label": "question"}'
    assert llm.chat_requests[1]["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_rate_limits_and_server_errors_are_transient(llm: ScriptedLLM, status: int) -> None:
    llm.script(status=status, times=1)
    llm.script(reply="fine now")
    chat = await models(llm).get("openai", credential="Main")
    with pytest.raises(TransientError) as caught:
        await chat.invoke([HumanMessage("hi")])
    assert caught.value.code == "llm_unavailable"
    assert caught.value.details["status"] == status
    assert "credential 'Main'" in caught.value.message
    if status == 429:
        assert caught.value.retry_after == 0
    # the client does not retry by itself: exactly one request per call
    assert len(llm.chat_requests) == 1
    assert (await chat.invoke([HumanMessage("hi")])).content == "fine now"


async def test_a_refused_key_is_a_user_error_naming_the_credential(llm: ScriptedLLM) -> None:
    chat = await models(llm, api_key="sk-wrong").get("openai", credential="OpenAI prod")
    with pytest.raises(UserError) as caught:
        await chat.invoke([HumanMessage("hi")])
    assert caught.value.code == "llm_auth_failed"
    assert "credential 'OpenAI prod' (openai)" in caught.value.message
    assert "401" in caught.value.message
    assert "sk-wrong" not in caught.value.message


async def test_a_bad_request_is_a_user_error(llm: ScriptedLLM) -> None:
    llm.script(status=400)
    chat = await models(llm).get("openai", model="no-such-model")
    with pytest.raises(UserError) as caught:
        await chat.invoke([HumanMessage("hi")])
    assert caught.value.code == "llm_bad_request"
    assert "'no-such-model'" in caught.value.message


async def test_a_timeout_is_transient(llm: ScriptedLLM) -> None:
    llm.script(reply="late", delay=1.5)
    settings = Settings(knowledge={"llm_timeout_seconds": 0.3})
    chat = await models(llm, settings).get("openai")
    with pytest.raises(TransientError, match="did not answer"):
        await chat.invoke([HumanMessage("hi")])


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("provider", ["openai", "ollama"])
async def test_an_unreachable_server_is_transient(provider: str) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    fields = {"api_key": "k", "base_url": url + ("/v1" if provider == "openai" else "")}
    settings = Settings(http=LOOPBACK_ALLOWED)
    chat = await CredentialChatModels(StaticCredentials(fields), settings).get(
        provider, credential="Local"
    )
    with pytest.raises(TransientError):
        await chat.invoke([HumanMessage("hi")])


async def test_providers_build_their_langchain_models() -> None:
    from langchain_anthropic import ChatAnthropic
    from langchain_ollama import ChatOllama
    from langchain_openai import ChatOpenAI

    settings = Settings()
    openai = build_chat_model(
        settings,
        "openai",
        {"api_key": "k", "base_url": "http://127.0.0.1:1/v1"},
        model="m",
        temperature=0,
        max_tokens=5,
    )
    assert isinstance(openai, ChatOpenAI) and openai.max_retries == 0
    assert openai.openai_api_base == "http://127.0.0.1:1/v1"
    anthropic = build_chat_model(
        settings, "anthropic", {"api_key": "k"}, model="claude-x", temperature=0, max_tokens=5
    )
    assert isinstance(anthropic, ChatAnthropic) and anthropic.max_retries == 0
    assert anthropic.max_tokens == 5
    ollama = build_chat_model(settings, "ollama", {}, model="llama3.2", temperature=0, max_tokens=5)
    assert isinstance(ollama, ChatOllama)
    assert ollama.base_url == settings.knowledge.llm_ollama_base_url
    with pytest.raises(UserError, match="allowed: openai, anthropic, ollama"):
        build_chat_model(settings, "cohere", {}, model="m", temperature=0, max_tokens=5)


async def test_defaults_come_from_settings_and_ollama_needs_no_credential() -> None:
    resolver = StaticCredentials({"api_key": "k"})
    settings = Settings(knowledge={"llm_model_anthropic": "claude-haiku-4-5"})
    chat_models = CredentialChatModels(resolver, settings)
    anthropic = await chat_models.get("anthropic")
    assert anthropic.model_name == "claude-haiku-4-5"
    assert resolver.asked == [("anthropic", None)]
    ollama = await chat_models.get("ollama")
    assert resolver.asked == [("anthropic", None)], "no credential lookup for the local Ollama"
    assert "the server's Ollama" in ollama.where
    with pytest.raises(UserError, match="unknown"):
        await chat_models.get("telepathy")


def test_prices_match_the_longest_prefix_and_unknown_models_are_flagged() -> None:
    settings = Settings()
    mini = price_of(settings, "gpt-4o-mini-2024-07-18")
    assert mini is not None and mini.input == 0.15
    full = price_of(settings, "gpt-4o-2024-08-06")
    assert full is not None and full.input == 2.5
    assert price_of(settings, "my-own-model") is None
    custom = Settings(knowledge={"llm_prices": {"my-own-model": {"input": 1, "output": 2}}})
    assert price_of(custom, "my-own-model") is not None


def test_usage_of_unpriced_and_local_models() -> None:
    from langchain_core.messages import AIMessage

    message = AIMessage(
        content="x", usage_metadata={"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    )
    settings = Settings()
    unknown = ChatModel(
        model=None,  # type: ignore[arg-type]
        provider="openai",
        model_name="my-own-model",
        credential=None,
        settings=settings,
    )
    assert unknown.usage(message).unpriced_calls == 1
    assert unknown.usage(message).cost_usd == 0
    local = ChatModel(
        model=None,  # type: ignore[arg-type]
        provider="ollama",
        model_name="llama3.2",
        credential=None,
        settings=settings,
    )
    assert local.usage(message).unpriced_calls == 0


def test_usage_sums_over_a_runs_node_outputs() -> None:
    one = Usage(provider="openai", model="m", calls=1, input_tokens=3, output_tokens=2)
    two = Usage(provider="openai", model="m", calls=1, input_tokens=4, output_tokens=1)
    outputs = [
        {"text": "hi", "usage": one.model_dump() | {"cost_usd": 0.25}},
        {"question": {"label": "question", "usage": two.model_dump() | {"cost_usd": 0.5}}},
        {"out": {"n": 1}},
        {"usage": "not a usage"},
    ]
    total = sum_usage(outputs)
    assert (total.calls, total.input_tokens, total.output_tokens) == (2, 7, 3)
    assert total.cost_usd == pytest.approx(0.75)
    assert total.model == "m"


# -- Anthropic, through langchain-anthropic against the server's Messages API ------------------


def anthropic_models(server: ScriptedLLM, api_key: str = "sk-test-key") -> Any:
    secret = {"api_key": api_key, "base_url": server.url.removesuffix("/v1")}
    return CredentialChatModels(StaticCredentials(secret), Settings(http=LOOPBACK_ALLOWED))


async def test_anthropic_answers_plain_streamed_and_with_tools(llm: ScriptedLLM) -> None:
    llm.script("opening hours", reply="We open at nine.")
    llm.script("route", tool_call={"arguments": {"label": "question"}})
    chat = await anthropic_models(llm).get(
        "anthropic", credential="Anthropic main", model="claude-3-5-haiku-latest"
    )
    answer = await chat.invoke([SystemMessage("Be brief."), HumanMessage("opening hours?")])
    assert answer.content == "We open at nine."
    usage = chat.usage(answer)
    # the server counts words: "system: Be brief." + "user: opening hours?"
    assert (usage.input_tokens, usage.output_tokens) == (6, 4)
    assert usage.cost_usd == pytest.approx((6 * 0.80 + 4 * 4.00) / 1_000_000)
    streamed = await chat.invoke([HumanMessage("opening hours?")], stream=True)
    assert "".join(b["text"] if isinstance(b, dict) else b for b in streamed.content) == (
        "We open at nine."
    )
    assert streamed.usage_metadata is not None
    assert streamed.usage_metadata["output_tokens"] == 4
    tool = {
        "type": "function",
        "function": {
            "name": "classify",
            "parameters": {"type": "object", "properties": {"label": {"type": "string"}}},
        },
    }
    called = await chat.invoke([HumanMessage("route this")], tools=[tool], tool_choice="classify")
    assert called.tool_calls[0]["args"] == {"label": "question"}
    sent = [r for r in llm.requests if r["path"] == "/v1/messages"]
    assert sent[0]["body"]["system"] == "Be brief."
    headers = sent[0]["headers"]
    assert "sk-test-key" in (headers.get("x-api-key"), headers.get("authorization", "")[7:])
    assert "anthropic-version" in headers
    assert sent[2]["body"]["tool_choice"] == {"type": "tool", "name": "classify"}


@pytest.mark.parametrize("status", [429, 529])
async def test_anthropic_rate_limit_and_overload_are_transient(
    llm: ScriptedLLM, status: int
) -> None:
    llm.script(status=status)
    chat = await anthropic_models(llm).get("anthropic", credential="Anthropic main")
    with pytest.raises(TransientError) as caught:
        await chat.invoke([HumanMessage("hi")])
    assert caught.value.details["status"] == status
    assert len(llm.requests) == 1


async def test_anthropic_refused_key_names_the_credential(llm: ScriptedLLM) -> None:
    chat = await anthropic_models(llm, api_key="sk-ant-wrong").get(
        "anthropic", credential="Anthropic main"
    )
    with pytest.raises(UserError) as caught:
        await chat.invoke([HumanMessage("hi")])
    assert caught.value.code == "llm_auth_failed"
    assert "credential 'Anthropic main' (anthropic)" in caught.value.message
