"""Training data shipped with intake: the demo counties' labelled appeals (demo/*.jsonl) and
the labelled urgency set (urgency.jsonl) that the urgency rules are measured on."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from shared.events import Urgency

URGENCY_EXAMPLES = Path(__file__).with_name("urgency.jsonl")


@dataclass(frozen=True)
class UrgencyExample:
    """An appeal written the way citizens write, with the urgency a person gives it."""

    urgency: Urgency
    title: str
    text: str


@dataclass(frozen=True)
class EmergencyScores:
    """How well something flags ``Urgency.emergency``: precision (flagged that are real),
    recall (real that are flagged)."""

    flagged: int
    real: int
    right: int  # flagged and real

    @property
    def precision(self) -> float:
        return self.right / self.flagged if self.flagged else 1.0  # no false alarm raised

    @property
    def recall(self) -> float:
        return self.right / self.real if self.real else 1.0


def load_urgency(path: Path = URGENCY_EXAMPLES) -> list[UrgencyExample]:
    """``{"urgency", "title", "text"}`` per line; an unknown urgency is refused."""
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            row = json.loads(line)
            try:
                out.append(UrgencyExample(Urgency(row["urgency"]), row["title"], row["text"]))
            except ValueError as e:
                raise ValueError(f"{path.name}:{number}: {e}") from None
    return out


def score_emergencies(examples: Iterable[UrgencyExample], urgency_of: Callable[[str, str], Urgency]) -> EmergencyScores:
    """Compare ``urgency_of(title, text)`` with the labels, for the emergency class only."""
    flagged = real = right = 0
    for example in examples:
        said = urgency_of(example.title, example.text) is Urgency.emergency
        truth = example.urgency is Urgency.emergency
        flagged += said
        real += truth
        right += said and truth
    return EmergencyScores(flagged, real, right)
