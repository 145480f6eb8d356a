"""ScienceQA accuracy, overall and per category, as the published tables define it.

Categories are those of `lupantech/ScienceQA` `tools/evaluate_acc.py` (the leaderboard LLaVA reports on):

- `NAT` / `SOC` / `LAN`: `subject` is natural / social / language science;
- `TXT`: the problem has a non-empty hint; `IMG`: it has an image; `NO`: neither (TXT and IMG overlap);
- `G1-6` / `G7-12`: `grade` is grade1..grade6 / grade7..grade12;
- `Avg`: all problems.

A prediction is correct when its parsed choice index equals the answer index. Answers are parsed with LLaVA's
`eval_science_qa.py` (`parsing.parse_answer`) after stripping surrounding whitespace, as LLaVA's inference
script (`model_vqa_science.py`) strips every generated text before writing it; an unparseable answer counts as
wrong (index -1, no random guess). Accuracies are percentages (0–100), like the tables; `n_<category>` is the
number of problems in each category and `parse_failed` the number of unparseable answers. A category with no
problems is left out rather than reported as 0 or NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

from llava_adapt.plugin import MetricSpec, VQAItem

from .parsing import FAILED, answer_index, parse_answer
from .problems import LOWER_GRADES, OPTIONS, SUBJECTS, UPPER_GRADES

CATEGORIES = ("NAT", "SOC", "LAN", "TXT", "IMG", "NO", "G1-6", "G7-12")


def categories(meta: dict) -> list[str]:
    """The ScienceQA categories an item belongs to, from its `VQAItem.meta`."""
    found = []
    if meta.get("subject") in SUBJECTS:
        found.append(SUBJECTS[meta["subject"]])
    has_hint, has_image = bool(meta.get("has_hint")), bool(meta.get("has_image"))
    if has_hint:
        found.append("TXT")
    if has_image:
        found.append("IMG")
    if "has_hint" in meta and "has_image" in meta and not (has_hint or has_image):
        found.append("NO")
    if meta.get("grade") in LOWER_GRADES:
        found.append("G1-6")
    elif meta.get("grade") in UPPER_GRADES:
        found.append("G7-12")
    return found


def gold_index(item: VQAItem) -> int:
    """The answer index of an item (`meta["answer_index"]`, else the position of its answer letter)."""
    if "answer_index" in item.meta:
        return int(item.meta["answer_index"])
    if item.answer not in OPTIONS[: len(item.choices)]:
        raise ValueError(f"ScienceQA item {item.id!r}: answer {item.answer!r} is not an option letter")
    return OPTIONS.index(item.answer)


def score_indices(items: Sequence[VQAItem], predicted: Sequence[int]) -> dict[str, float]:
    """Accuracy overall and per category, given a predicted choice index per item (-1 = no answer).

    Args:
        items (`Sequence[VQAItem]`): the benchmark items (their `meta` carries subject, grade, has_hint, has_image).
        predicted (`Sequence[int]`): the predicted choice index of each item, same order.
    """
    if len(items) != len(predicted):
        raise ValueError(f"ScienceQA metrics: {len(items)} items but {len(predicted)} predictions")
    if not items:
        raise ValueError("ScienceQA metrics: no items to score")
    total: dict[str, int] = {}
    correct: dict[str, int] = {}
    for item, pred in zip(items, predicted, strict=True):
        hit = pred == gold_index(item)
        for key in ("Avg", *categories(item.meta)):
            total[key] = total.get(key, 0) + 1
            correct[key] = correct.get(key, 0) + int(hit)
    scores: dict[str, float] = {"accuracy": 100.0 * correct["Avg"] / total["Avg"]}
    for key in CATEGORIES:
        if total.get(key):
            scores[key] = 100.0 * correct[key] / total[key]
    scores["count"] = float(total["Avg"])
    scores["correct"] = float(correct["Avg"])
    for key in CATEGORIES:
        if total.get(key):
            scores[f"n_{key}"] = float(total[key])
    return scores


def scienceqa_metrics(items: Sequence[VQAItem], predictions: Sequence[str]) -> dict[str, float]:
    """Score model answers on ScienceQA: LLaVA's parser, then the official per-category accuracies.

    Args:
        items (`Sequence[VQAItem]`): the benchmark items.
        predictions (`Sequence[str]`): the model's answer texts, same order.

    Returns:
        `accuracy` and one accuracy per non-empty category (percent), `count`, `correct`, `n_<category>`,
        `parse_failed`.
    """
    if len(items) != len(predictions):
        raise ValueError(f"ScienceQA metrics: {len(items)} items but {len(predictions)} predictions")
    letters = [parse_answer(text.strip()) for text in predictions]
    scores = score_indices(items, [answer_index(a, len(i.choices)) for i, a in zip(items, letters, strict=True)])
    scores["parse_failed"] = float(sum(a == FAILED for a in letters))
    return scores


def answer_correct(item: VQAItem, prediction: str) -> bool:
    """Whether one answer text is right as `scienceqa_metrics` counts it (LLaVA's parser; `Benchmark.correct`)."""
    return answer_index(parse_answer(prediction.strip()), len(item.choices)) == gold_index(item)


# What `scienceqa_metrics` returns: accuracies in percent, like the published tables.
SCIENCEQA_SPECS: dict[str, MetricSpec] = {
    "accuracy": MetricSpec(percent=True, primary=True, description="accuracy over all problems (Avg)"),
    **{key: MetricSpec(percent=True, description=f"accuracy on the {key} problems") for key in CATEGORIES},
    "count": MetricSpec(kind="count", description="problems scored"),
    "correct": MetricSpec(kind="count", description="problems answered right"),
    "n_*": MetricSpec(kind="count", description="problems in one category"),
    "parse_failed": MetricSpec(kind="count", higher_is_better=False, description="answers naming no option"),
}
