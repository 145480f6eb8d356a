"""Offline scores of free-form answers (LLaVA-Bench) against GPT-4's reference answers: token recall and token F1.

Without a judge, a long free-form answer has no reference to match word for word; the overlap of its words with
the reference is a cheap, deterministic proxy (recall of the reference's tokens is what LLaVA-Med reports for open
questions), blind to whether the answer is right. Tokens are the words `normalize_answer` leaves (lower case,
punctuation and articles dropped); counts are clipped, so a word repeated in the answer counts at most as often as
the reference has it.

- `token_recall`: per question, the share of the reference's tokens found in the answer; averaged over questions.
- `token_f1`: per question, the harmonic mean of that recall and the share of the answer's tokens found in the
  reference (SQuAD's F1); averaged over questions. An empty answer scores 0.
- `token_recall/<category>`, `token_f1/<category>`: the same per `meta["category"]`; `n_items`: the count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from llava_adapt.plugin import MetricSpec, VQAItem, normalize_answer


def _overlap(prediction: str, reference: str) -> tuple[int, int, int]:
    """(shared tokens, prediction tokens, reference tokens), with clipped counts."""
    pred = Counter(normalize_answer(prediction).split())
    ref = Counter(normalize_answer(reference).split())
    return sum((pred & ref).values()), sum(pred.values()), sum(ref.values())


def token_recall(prediction: str, reference: str) -> float:
    """The share of the reference's tokens that the prediction contains (clipped counts); 0.0 for an empty
    reference."""
    common, _, total = _overlap(prediction, reference)
    return common / total if total else 0.0


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD-style token F1 between a prediction and a reference (clipped counts); 0.0 when they share no token."""
    common, predicted, total = _overlap(prediction, reference)
    if common == 0:
        return 0.0
    precision, recall = common / predicted, common / total
    return 2 * precision * recall / (precision + recall)


def chat_metrics(items: Sequence[VQAItem], predictions: Sequence[str]) -> dict[str, float]:
    """Token recall and F1 of each answer against the item's reference, overall and per category.

    Args:
        items (`Sequence[VQAItem]`): the questions (reference in `answer`, category in `meta["category"]`).
        predictions (`Sequence[str]`): the model's answers, same order.

    Returns:
        `dict[str, float]`: `token_recall`, `token_f1`, `n_items` and `token_recall/<category>`,
        `token_f1/<category>` per category (see the module docstring).

    Raises:
        ValueError: the two sequences differ in length.
    """
    if len(items) != len(predictions):
        raise ValueError(f"{len(items)} items but {len(predictions)} predictions; they must pair up in order")
    rows = [
        (str(item.meta.get("category", "")), token_recall(p, item.answer), token_f1(p, item.answer))
        for item, p in zip(items, predictions, strict=True)
    ]
    out: dict[str, float] = {"n_items": float(len(rows))}
    groups = {"": rows} if rows else {}
    groups.update({f"/{c}": [r for r in rows if r[0] == c] for c in sorted({r[0] for r in rows} - {""})})
    for suffix, group in groups.items():
        out[f"token_recall{suffix}"] = sum(r[1] for r in group) / len(group)
        out[f"token_f1{suffix}"] = sum(r[2] for r in group) / len(group)
    return out


# What `chat_metrics` returns.
CHAT_SPECS: dict[str, MetricSpec] = {
    "token_recall": MetricSpec(primary=True, description="mean share of the reference's tokens found in the answer"),
    "token_recall/*": MetricSpec(description="token recall within one category"),
    "token_f1": MetricSpec(description="mean token F1 of answer and reference"),
    "token_f1/*": MetricSpec(description="token F1 within one category"),
    "n_items": MetricSpec(kind="count", description="questions scored"),
}
