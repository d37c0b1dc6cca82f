"""The knowledge answer's refusal: the embedder's calibrated threshold, the optional grading
step (a JSON verdict with its usage) and the citations of the passages used."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from socialflow.core.settings import Settings
from socialflow.knowledge import (
    KnowledgeBase,
    MiniLMEmbeddings,
    WorkspaceRetriever,
    open_store,
    refusal_threshold,
)
from socialflow.nodes.builtins._ai_prompts import parse_grade
from socialflow.nodes.builtins.ai import KnowledgeAnswerNode
from tests.fixtures.llm_server import ScriptedLLM, serve_llm
from tests.nodes.test_ai_nodes import _workspace, ai_context, node

ARTICLES = [
    (
        "How to delete your Harvestbox account",
        "Open Account Settings, Privacy, and select Delete My Account; we remove your data "
        "within 30 days.",
        "delete-account.txt",
    ),
    (
        "Returns and refunds",
        "Returns are accepted within 30 days with the receipt; refunds take 5 days.",
        "returns.txt",
    ),
    (
        "Shipping",
        "Shipping to Portugal and Spain is free for orders above 50 euros.",
        "shipping.txt",
    ),
]
GRADER = "You check whether numbered passages"
ANSWERER = "Use only the numbered context passages"


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbeddings:
    return MiniLMEmbeddings.shared()


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with serve_llm() as server:
        yield server


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(knowledge={"store_path": str(tmp_path / "stores")})


async def help_base(db: Any, settings: Settings, minilm: MiniLMEmbeddings) -> KnowledgeBase:
    """A workspace's MiniLM base holding three short articles, titled as ingestion titles."""
    workspace = uuid.uuid4()
    base = KnowledgeBase(
        workspace_id=workspace,
        name="Help",
        embedder_provider="minilm",
        embedder_model="all-MiniLM-L6-v2",
        embedder_dimension=384,
    )
    async with db.session() as session:
        session.add(_workspace(workspace))
        await session.flush()
        session.add(base)
    store = open_store(settings, namespace=str(base.id), embeddings=minilm)
    store.add_texts(
        [text for _, text, _ in ARTICLES],
        [
            {"filename": name, "title": title, "section": "", "context": title}
            for title, _, name in ARTICLES
        ],
        ids=[f"{name}#1" for _, _, name in ARTICLES],
    )
    return base


def answer_node(base: KnowledgeBase, **config: Any) -> Any:
    return node(KnowledgeAnswerNode, {"knowledge_base_id": str(base.id), "top_k": 2, **config})


def context(llm: ScriptedLLM, db: Any, settings: Settings, base: KnowledgeBase, text: str) -> Any:
    retriever = WorkspaceRetriever(db, settings, base.workspace_id)
    return ai_context(llm, retriever=retriever, trigger={"text": text})


# -- the threshold -------------------------------------------------------------------------------


async def test_the_calibrated_threshold_applies_unless_the_node_sets_its_own(
    db: Any, settings: Settings, minilm: MiniLMEmbeddings, llm: ScriptedLLM
) -> None:
    base = await help_base(db, settings, minilm)
    llm.script(ANSWERER, reply="I don't know.")
    question = "Who won the football world cup in 1998?"
    calibrated = refusal_threshold("minilm", "all-MiniLM-L6-v2")

    refused = await answer_node(base).run(context(llm, db, settings, base, question))
    assert refused["decision"]["threshold"] == calibrated
    assert refused["decision"]["reason"] == "below_threshold"
    assert llm.requests == []

    # a node that sets 0 lets every chunk through: the model is asked
    asked = await answer_node(base, score_threshold=0).run(
        context(llm, db, settings, base, question)
    )
    assert asked["decision"]["threshold"] == 0
    assert asked["decision"]["top_score"] is not None
    assert len(llm.chat_requests) == 1

    # and one that sets 0.99 refuses even a question the base answers
    strict = await answer_node(base, score_threshold=0.99).run(
        context(llm, db, settings, base, "How long do refunds take?")
    )
    assert strict["answer"] == "Sorry, I don't know the answer to that."
    assert strict["decision"]["threshold"] == 0.99
    assert len(llm.chat_requests) == 1


@pytest.mark.parametrize("value", [-0.1, 1.5, "high", float("nan")])
def test_a_threshold_outside_0_to_1_is_refused_naming_the_field(value: Any) -> None:
    with pytest.raises(ValueError, match="score_threshold"):
        KnowledgeAnswerNode.Config.model_validate(
            {"knowledge_base_id": str(uuid.uuid4()), "score_threshold": value}
        )


# -- citations ---------------------------------------------------------------------------------


async def test_the_passages_cited_are_listed_with_their_ids_and_titles(
    db: Any, settings: Settings, minilm: MiniLMEmbeddings, llm: ScriptedLLM
) -> None:
    base = await help_base(db, settings, minilm)
    llm.script(ANSWERER, reply="Refunds take 5 days [1]; see also [7].")
    result = await answer_node(base, score_threshold=0).run(
        context(llm, db, settings, base, "How long do refunds take?")
    )
    assert result["decision"]["answered"] is True
    assert result["decision"]["reason"] == "answered"
    assert result["citations"] == [
        {
            "n": 1,
            "id": "returns.txt#1",
            "title": "Returns and refunds",
            "source": "returns.txt",
            "section": None,
        }
    ], "[7] names no passage given: not a citation"
    assert [s["cited"] for s in result["sources"]] == [True, False]
    assert result["sources"][0]["title"] == "Returns and refunds"
    # the model saw the passages' text, not the context the index used
    (sent,) = llm.chat_requests
    assert "[1] (source: returns.txt)\nReturns are accepted" in sent["messages"][1]["content"]


async def test_an_answer_that_is_the_fallback_cites_nothing(
    db: Any, settings: Settings, minilm: MiniLMEmbeddings, llm: ScriptedLLM
) -> None:
    base = await help_base(db, settings, minilm)
    llm.script(ANSWERER, reply="Sorry, I don't know the answer to that.")
    result = await answer_node(base, score_threshold=0).run(
        context(llm, db, settings, base, "Do you deliver to Canada? [1]")
    )
    assert result["answer"] == "Sorry, I don't know the answer to that."
    assert result["citations"] == []
    assert result["decision"] | {"top_score": None} == {
        "answered": False,
        "reason": "model_fallback",
        "threshold": 0,
        "top_score": None,
        "grade": None,
    }


# -- the grading step ----------------------------------------------------------------------------


async def test_a_negative_grade_says_the_fallback_without_a_second_call(
    db: Any, settings: Settings, minilm: MiniLMEmbeddings, llm: ScriptedLLM
) -> None:
    base = await help_base(db, settings, minilm)
    verdict = {"answerable": False, "passages": [], "reason": "They are about Harvestbox."}
    llm.script(GRADER, json=verdict)
    llm.script(ANSWERER, reply="Open Account Settings, Privacy [1].")  # must not be asked
    result = await answer_node(base, grade=True, score_threshold=0).run(
        context(llm, db, settings, base, "How do I delete my Facebook account?")
    )
    assert result["answer"] == "Sorry, I don't know the answer to that."
    decision = result["decision"]
    assert decision["answered"] is False and decision["reason"] == "graded_unanswerable"
    grade = decision["grade"]
    assert grade["answerable"] is False and grade["reason"] == "They are about Harvestbox."
    assert grade["usage"]["calls"] == 1 and grade["usage"]["input_tokens"] > 0
    assert result["usage"] == grade["usage"]
    assert result["citations"] == [] and len(result["sources"]) == 2
    (sent,) = llm.chat_requests
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["messages"][0]["content"].startswith(GRADER)
    assert "Question: How do I delete my Facebook account?" in sent["messages"][1]["content"]


async def test_a_positive_grade_answers_and_both_calls_are_counted(
    db: Any, settings: Settings, minilm: MiniLMEmbeddings, llm: ScriptedLLM
) -> None:
    base = await help_base(db, settings, minilm)
    llm.script(GRADER, json={"answerable": True, "passages": [1, 9], "reason": "It says how."})
    llm.script(ANSWERER, reply="Open Account Settings, Privacy, then Delete My Account.")
    result = await answer_node(base, grade=True, score_threshold=0).run(
        context(llm, db, settings, base, "how can I remove my Harvestbox account?")
    )
    assert result["answer"] == "Open Account Settings, Privacy, then Delete My Account."
    decision = result["decision"]
    assert decision["answered"] is True and decision["grade"]["passages"] == [1]
    grade_usage, total = decision["grade"]["usage"], result["usage"]
    assert total["calls"] == 2
    assert total["input_tokens"] > grade_usage["input_tokens"] > 0
    assert total["cost_usd"] > grade_usage["cost_usd"] > 0
    # the answer named no passage: the grader's are its citations
    assert [c["id"] for c in result["citations"]] == ["delete-account.txt#1"]
    assert result["citations"][0]["title"] == "How to delete your Harvestbox account"
    assert len(llm.chat_requests) == 2


@pytest.mark.parametrize(
    "reply",
    ["maybe?", '{"answerable": "perhaps"}', "[1, 2]", '{"answerable": null}', "{broken"],
)
async def test_an_unreadable_grade_leaves_the_decision_to_the_grounded_answer(
    db: Any, settings: Settings, minilm: MiniLMEmbeddings, llm: ScriptedLLM, reply: str
) -> None:
    base = await help_base(db, settings, minilm)
    llm.script(GRADER, reply=reply)
    llm.script(ANSWERER, reply="Shipping to Spain is free above 50 euros [1].")
    result = await answer_node(base, grade=True, score_threshold=0).run(
        context(llm, db, settings, base, "is shipping to spain free?")
    )
    assert result["decision"]["grade"]["answerable"] is None
    assert result["decision"]["answered"] is True
    assert result["usage"]["calls"] == 2


@pytest.mark.parametrize(
    ("content", "answerable", "passages"),
    [
        ('{"answerable": true, "passages": [2, 1, 2]}', True, [1, 2]),
        ('Sure! {"answerable": "no", "passages": []} Hope that helps.', False, []),
        ('{"answerable": "YES", "passages": [0, 3, -1, 99, true, "1", 1.0]}', True, []),
        ('{"answerable": false, "passages": "1,2"}', False, []),
        ('{"passages": [1]}', None, [1]),
        ("", None, []),
        ("[]", None, []),
        ('{"answerable": 1}', None, []),  # a number is not a verdict
    ],
)
def test_parse_grade(content: str, answerable: bool | None, passages: list[int]) -> None:
    grade = parse_grade(content, count=2)
    assert (grade.answerable, grade.passages) == (answerable, passages)


def test_a_grade_s_reason_is_cut_and_a_huge_reply_is_read_safely() -> None:
    grade = parse_grade('{"answerable": false, "reason": "' + "x" * 100_000 + '"}', count=4)
    assert grade.answerable is False and len(grade.reason) == 500
    deep = "[" * 10_000 + "]" * 10_000
    assert parse_grade('{"answerable": true, "passages": ' + deep + "}", count=4).answerable in (
        True,
        None,
    )
