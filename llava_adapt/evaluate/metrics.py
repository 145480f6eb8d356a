"""Shared answer parsing and closed-question accuracy.

A closed question has a fixed answer set (`VQAItem.choices`, e.g. yes/no or colours). The prediction is
normalised (lower case, punctuation and articles removed, whitespace collapsed) and mapped to a choice: the choice
it equals, else the single choice it mentions as whole words. A prediction that mentions no choice, or several,
maps to none and counts as wrong: "red or blue" is not an answer. Without choices, the normalised prediction must
equal the normalised reference.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

from llava_adapt.data.records import VQAItem
from llava_adapt.evaluate.metric_spec import MetricSpec

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans({c: " " for c in string.punctuation})


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and articles, collapse whitespace."""
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION))
    return " ".join(text.split())


def match_choice(prediction: str, choices: Sequence[str]) -> str | None:
    """The choice a prediction gives, or `None` when it gives none or several (see the module docstring).

    Args:
        prediction (`str`): the model's answer.
        choices (`Sequence[str]`): the closed answer set.
    """
    pred = normalize_answer(prediction)
    normalized = {normalize_answer(c): c for c in choices}
    if pred in normalized:
        return normalized[pred]
    mentioned = [c for n, c in normalized.items() if n and re.search(rf"\b{re.escape(n)}\b", pred)]
    return mentioned[0] if len(mentioned) == 1 else None


def is_correct(item: VQAItem, prediction: str) -> bool:
    """Whether `prediction` answers the closed question `item` correctly."""
    if item.choices:
        return match_choice(prediction, item.choices) == item.answer
    return normalize_answer(prediction) == normalize_answer(item.answer)


def closed_accuracy(items: Sequence[VQAItem], predictions: Sequence[str]) -> dict[str, float]:
    """Accuracy over the closed questions of `items`, and the accuracy of uniform guessing among their choices.

    Args:
        items (`Sequence[VQAItem]`): the benchmark items (open questions are ignored).
        predictions (`Sequence[str]`): the model's answers, in the same order.

    Returns:
        `{"accuracy", "chance", "num_closed"}`; `chance` is the mean of `1 / len(choices)` (0 when no question has
        choices).
    """
    if len(items) != len(predictions):
        raise ValueError(f"{len(items)} items but {len(predictions)} predictions")
    closed = [(item, pred) for item, pred in zip(items, predictions, strict=True) if item.answer_type == "closed"]
    if not closed:
        return {"accuracy": 0.0, "chance": 0.0, "num_closed": 0}
    correct = sum(is_correct(item, pred) for item, pred in closed)
    chance = sum(1 / len(item.choices) for item, _ in closed if item.choices) / len(closed)
    return {"accuracy": correct / len(closed), "chance": chance, "num_closed": len(closed)}


# What `closed_accuracy` returns (`Benchmark.metric_specs` of a benchmark it scores).
CLOSED_ACCURACY_SPECS: dict[str, MetricSpec] = {
    "accuracy": MetricSpec(primary=True, description="share of closed questions answered with the right choice"),
    "chance": MetricSpec(kind="baseline", baseline_for="accuracy", description="accuracy of guessing uniformly"),
    "num_closed": MetricSpec(kind="count", description="closed questions scored"),
}
