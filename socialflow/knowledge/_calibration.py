"""Refusal thresholds per embedder: below what similarity a knowledge answer says it cannot answer.

A cosine similarity means different things for different embedders (MiniLM's unrelated pairs
sit near 0.1, other models' near 0.7), so one fixed threshold cannot serve them all. Each
embedder measured here has its own, calibrated on a labelled set of answerable and unanswerable
questions (``bench/refusal.py``): the highest threshold on the top chunk's cosine similarity at
which at least 95 % of the answerable questions of the calibration split are still answered.
An embedder not listed keeps the threshold used before calibration; a node may always set its
own. A threshold trades answered for refused questions; where near-domain questions the base
cannot answer score like real ones, the knowledge answer's grading step is what refuses them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CALIBRATIONS",
    "UNCALIBRATED_THRESHOLD",
    "RefusalCalibration",
    "refusal_threshold",
]

#: what an embedder without a calibration gets (the threshold every embedder used before)
UNCALIBRATED_THRESHOLD = 0.3


@dataclass(frozen=True, slots=True)
class RefusalCalibration:
    """A measured refusal threshold of one embedder.

    Attributes:
        threshold: The least cosine similarity of the best chunk for which a question is
            answered at all.
        answered: Share of the held-out answerable questions answered at ``threshold``.
        refused: Share of the held-out unanswerable questions refused at ``threshold``.
        measured_on: The data and command it comes from.
    """

    threshold: float
    answered: float
    refused: float
    measured_on: str


#: by ``(provider, model)`` as knowledge bases record their embedder
CALIBRATIONS: dict[tuple[str, str], RefusalCalibration] = {
    # top cosine at the 5th percentile of harvestbox-faq's 66 dev answerable questions
    # (chunks with context): 0.333. On its test split 0.33 answers 95.5 % of 66 answerable
    # questions and refuses 5 % of 20 unanswerable near-domain ones; refusing most of those
    # (0.45: 65 %) would answer 85 %. Similarity alone cannot tell "Harvestbox password"
    # from "HelloFresh password": that is the grading step's work.
    ("minilm", "all-MiniLM-L6-v2"): RefusalCalibration(
        threshold=0.33,
        answered=0.955,
        refused=0.05,
        measured_on="bench/refusal.py on bench/data/harvestbox-faq (dev to choose, test to report)",
    ),
}


def refusal_threshold(provider: str, model: str) -> float:
    """The refusal threshold of an embedder: its calibration's, else ``UNCALIBRATED_THRESHOLD``.

    Args:
        provider: The embedder's provider as the knowledge base records it (``minilm``, …).
        model: Its model id.

    Returns:
        A cosine similarity between 0 and 1.
    """
    calibration = CALIBRATIONS.get((provider, model))
    return calibration.threshold if calibration is not None else UNCALIBRATED_THRESHOLD
