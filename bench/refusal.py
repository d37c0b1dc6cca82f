"""When the knowledge answer should refuse: answerable questions answered against unanswerable
ones refused, per refusal statistic and threshold, on the harvestbox-faq set.

Every help article is uploaded as a plain-text file and chunked by the ingestion path (with and
without chunk context); each question is searched as ``ai.knowledge_answer`` searches it (the
50 best dense and BM25 chunks, fused by the default convex fusion). A question is answered when
its refusal statistic reaches the threshold, refused otherwise. Statistics measured:

- ``top cosine``: the best chunk's cosine similarity (what the node's ``score_threshold``
  compares: no chunk reaches it, no answer);
- ``margin``: the best chunk's cosine minus the best cosine of a chunk of another document;
- ``top z``: how many standard deviations the best cosine stands above the 50 candidates'.

Each statistic's threshold is calibrated on the dev split (the highest one that still answers
at least 95 % of its answerable questions) and reported on the test split, which plays no part
in the choice. The trade-off table of the top cosine over a range of thresholds follows; the
calibrated threshold of the context variant is the built-in default of the MiniLM embedder
(``socialflow/knowledge/_calibration.py``).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._corpus import (  # noqa: E402
    Collection,
    data_dir,
    documents,
    ingested,
    load_corpus,
    load_split,
    load_unanswerable,
)
from bench._harness import print_table  # noqa: E402
from bench.retrieval import DEFAULT_MODE, Lists, Run, rank, search  # noqa: E402
from socialflow.core.settings import Settings  # noqa: E402
from socialflow.knowledge import (  # noqa: E402
    UNCALIBRATED_THRESHOLD,
    MiniLMEmbeddings,
    refusal_threshold,
)

#: share of answerable questions the calibrated threshold must still answer
TARGET_ANSWERED = 0.95
TOP_K = 4  # the node's default top_k: the passages a model would see
THRESHOLDS = (0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6)


def top_cosine(lists: Lists, _doc_of: dict[str, str]) -> float:
    """The best chunk's cosine similarity."""
    dense = lists[0]
    return dense[0][1] if dense else -1.0


def margin(lists: Lists, doc_of: dict[str, str]) -> float:
    """The best cosine minus the best cosine of a chunk of another document."""
    dense = lists[0]
    if not dense:
        return -1.0
    first = doc_of[dense[0][0]]
    other = next((s for c, s in dense if doc_of[c] != first), -1.0)
    return dense[0][1] - other


def top_z(lists: Lists, _doc_of: dict[str, str]) -> float:
    """How far the best cosine stands above the candidates', in standard deviations."""
    scores = [s for _, s in lists[0]]
    if len(scores) < 2:
        return 0.0
    spread = statistics.pstdev(scores) or 1.0
    return (scores[0] - statistics.fmean(scores)) / spread


STATISTICS: dict[str, Callable[[Lists, dict[str, str]], float]] = {
    "top cosine": top_cosine,
    "margin": margin,
    "top z": top_z,
}


def calibrate(values: list[float], target: float = TARGET_ANSWERED) -> float:
    """The highest threshold that still answers ``target`` of these (answerable) values."""
    ordered = sorted(values)
    refusable = math.floor(len(ordered) * (1 - target) + 1e-9)
    return ordered[refusable]


def outcome(
    answerable: dict[str, Lists],
    unanswerable: dict[str, Lists],
    qrels: dict[str, dict[str, int]],
    collection: Collection,
    statistic: Callable[[Lists, dict[str, str]], float],
    threshold: float,
) -> tuple[float, float, float]:
    """Share of answerable questions answered, of those answered with the right article among
    the passages, and share of unanswerable questions refused."""
    answered = right = 0
    for qid, lists in answerable.items():
        if statistic(lists, collection.doc_of) >= threshold:
            answered += 1
            passages = _passages(lists, threshold if statistic is top_cosine else -1.0)
            right += any(d in qrels[qid] for d in documents(passages, collection.doc_of))
    refused = sum(
        statistic(lists, collection.doc_of) < threshold for lists in unanswerable.values()
    )
    return answered / len(answerable), right / len(answerable), refused / len(unanswerable)


def _passages(lists: Lists, threshold: float) -> list[str]:
    """The chunks the node would hand the model: fused order, cosine at least ``threshold``."""
    cosine = dict(lists[0])
    kept = [c for c in rank(lists, DEFAULT_MODE) if cosine.get(c, -1.0) >= threshold]
    return kept[:TOP_K]


def by_answerable(run: Run, split: str) -> tuple[dict[str, Lists], dict[str, Lists]]:
    """A split's candidate lists: those of answerable questions, those of unanswerable ones."""
    qrels = run.splits[split][1]
    lists = run.lists[split]
    return (
        {q: v for q, v in lists.items() if q in qrels},
        {q: v for q, v in lists.items() if q not in qrels},
    )


def main() -> None:
    """Search the FAQ set; calibrate each statistic on dev; print the tables on test."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidates", type=int, default=50, help="candidates per side")
    args = parser.parse_args()

    model = MiniLMEmbeddings.shared()
    folder = data_dir("harvestbox-faq")
    corpus = load_corpus(folder)
    splits = {}
    for split in ("dev", "test"):
        queries, qrels = load_split(folder, split)
        unanswerable = load_unanswerable(folder, split)
        splits[split] = ({**queries, **unanswerable}, qrels)
    default = refusal_threshold(model.provider, model.model_name)
    for context in (True, False):
        name = "faq-chunks" + ("+context" if context else "")
        collection = ingested(name, corpus, context=context, settings=Settings())
        run = search("faq", collection, splits, "dev", model, args.candidates)

        dev_yes, dev_no = by_answerable(run, "dev")
        test_yes, test_no = by_answerable(run, "test")
        rows = []
        calibrated = {}
        for label, statistic in STATISTICS.items():
            values = [statistic(v, collection.doc_of) for v in dev_yes.values()]
            threshold = calibrate(values)
            calibrated[label] = threshold
            d = outcome(dev_yes, dev_no, splits["dev"][1], collection, statistic, threshold)
            t = outcome(test_yes, test_no, splits["test"][1], collection, statistic, threshold)
            rows.append(
                [label, f"{threshold:.3f}", *(f"{x:.1%}" for x in (d[0], d[2], t[0], t[1], t[2]))]
            )
        print_table(
            f"{name}: refusal statistics calibrated on dev ({len(dev_yes)} answerable, "
            f"{len(dev_no)} unanswerable) for >= {TARGET_ANSWERED:.0%} answered; test: "
            f"{len(test_yes)} answerable, {len(test_no)} unanswerable",
            [
                "statistic",
                "threshold",
                "dev answered",
                "dev refused",
                "test answered",
                "test answered, right article in passages",
                "test refused",
            ],
            rows,
        )
        table = []
        marks = {
            UNCALIBRATED_THRESHOLD: "before calibration",
            calibrated["top cosine"]: "calibrated on dev",
        }
        if context:
            marks[default] = "default (built in)"
        for threshold in sorted({*THRESHOLDS, *marks}):
            t = outcome(test_yes, test_no, splits["test"][1], collection, top_cosine, threshold)
            a = outcome(
                {**dev_yes, **test_yes},
                {**dev_no, **test_no},
                {**splits["dev"][1], **splits["test"][1]},
                collection,
                top_cosine,
                threshold,
            )
            note = ", ".join(label for value, label in marks.items() if value == threshold)
            table.append(
                [f"{threshold:.3f}", *(f"{x:.1%}" for x in (t[0], t[1], t[2], a[0], a[2])), note]
            )
        print_table(
            f"{name}: top cosine threshold, answerable answered vs unanswerable refused",
            [
                "threshold",
                "test answered",
                "test right article",
                "test refused",
                "all answered",
                "all refused",
                "",
            ],
            table,
        )
    print(f"\nbuilt-in default for {model.provider}/{model.model_name}: {default}")


if __name__ == "__main__":
    main()
