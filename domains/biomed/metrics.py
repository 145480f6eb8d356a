"""Medical VQA metrics: LLaVA-Med's closed accuracy and open recall, done right, plus exact match and token F1.

Definitions (after `normalize_answer`: lower case, punctuation → space except decimal points, articles dropped,
number words → digits):

- **closed accuracy** — the share of *all* closed questions whose predicted answer equals the reference. The
  predicted answer is the candidate (the item's `choices`; `yes`/`no` for a yes/no reference; else the reference
  alone) that occurs **first as whole words** in the prediction. A prediction naming no candidate is wrong.
  LLaVA-Med (`llava/eval/run_eval.py` before PR #35, and `run_eval_batch.py`'s substring test) instead counts a hit
  when the reference is a *substring* of the prediction — so "no" matches "not", "nodule", "know", and "yes, no
  effusion" is right for both answers — and its older script left wrong yes/no answers out of the denominator.
- **open recall** — per open question, the share of reference tokens found in the prediction (each token counted
  at most as often as the prediction contains it), averaged over open questions. This is the paper's "recall of
  ground-truth tokens in the generation". LLaVA-Med's `calculate_f1score` adds the *prediction's* count of a
  shared token to the true positives, so a prediction repeating one reference word inflates recall; we clip.
- **exact match** — normalised prediction == normalised reference.
- **token F1** — SQuAD-style harmonic mean of token precision and recall (clipped counts).

Counting uses scikit-learn's `accuracy_score` on the parsed answers; every returned value is a float.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence

from llava_adapt.plugin import MetricSpec, VQAItem

NO_ANSWER = "<no answer>"
_PUNCTUATION = re.compile(r"(?!(?<=\d)\.(?=\d))[^\w\s]|_")
_ARTICLES = frozenset({"a", "an", "the"})
_NUMBERS = {
    "none": "0",
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}


def normalize_answer(text: str) -> str:
    """Normalise an answer for comparison (VQA style; see the module docstring)."""
    text = _PUNCTUATION.sub(" ", str(text).lower())
    return " ".join(_NUMBERS.get(tok, tok) for tok in text.split() if tok not in _ARTICLES)


def closed_candidates(item: VQAItem) -> list[str]:
    """The normalised answers a closed question can take: its choices, yes/no, or the reference alone."""
    reference = normalize_answer(item.answer)
    if item.choices:
        candidates = [normalize_answer(c) for c in item.choices]
    elif reference in ("yes", "no"):
        candidates = ["yes", "no"]
    else:
        candidates = [reference]
    if reference not in candidates:
        candidates.append(reference)
    return [c for c in dict.fromkeys(candidates) if c]


def parse_closed(prediction: str, candidates: Sequence[str]) -> str | None:
    """Return the candidate the prediction names first (as whole words), or `None` when it names none.

    Args:
        prediction (`str`): the model's answer.
        candidates (`Sequence[str]`): normalised candidate answers. On a tie in position, the longer one wins.
    """
    tokens = normalize_answer(prediction).split()
    best: tuple[int, int] | None = None
    answer = None
    for candidate in candidates:
        words = candidate.split()
        for start in range(len(tokens) - len(words) + 1):
            if tokens[start : start + len(words)] == words:
                rank = (start, -len(words))
                if best is None or rank < best:
                    best, answer = rank, candidate
                break
    return answer


def token_recall(prediction: str, reference: str) -> float:
    """Share of the reference's tokens that the prediction contains (clipped counts); 1.0 for an empty reference
    only when the prediction is empty too."""
    ref = Counter(normalize_answer(reference).split())
    pred = Counter(normalize_answer(prediction).split())
    total = sum(ref.values())
    if total == 0:
        return float(sum(pred.values()) == 0)
    return sum((ref & pred).values()) / total


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD-style token F1 between a prediction and a reference (clipped counts)."""
    ref = Counter(normalize_answer(reference).split())
    pred = Counter(normalize_answer(prediction).split())
    if not ref or not pred:
        return float(ref == pred)
    common = sum((ref & pred).values())
    if common == 0:
        return 0.0
    precision, recall = common / sum(pred.values()), common / sum(ref.values())
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the normalised prediction equals the normalised reference, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def vqa_metrics(items: Sequence[VQAItem], predictions: Sequence[str], group_by: str | None = None) -> dict[str, float]:
    """Score predictions on medical VQA items.

    Args:
        items (`Sequence[VQAItem]`): the benchmark items.
        predictions (`Sequence[str]`): one prediction per item, same order.
        group_by (`str | None`, defaults to `None`): an item `meta` key; adds `closed_accuracy/<value>` and
            `open_recall/<value>` per group.

    Returns:
        `dict[str, float]` with `closed_accuracy`, `closed_no_answer` (share of closed predictions naming no
        candidate), `open_recall`, `open_token_f1` (each only when there are such items), `exact_match`,
        `token_f1`, `n_closed`, `n_open`, and the per-group entries.

    Raises:
        ValueError: the two sequences differ in length.
    """
    if len(items) != len(predictions):
        raise ValueError(f"{len(items)} items but {len(predictions)} predictions; they must pair up in order")
    out: dict[str, float] = {}
    closed = [(i, p) for i, p in zip(items, predictions, strict=True) if i.answer_type == "closed"]
    opened = [(i, p) for i, p in zip(items, predictions, strict=True) if i.answer_type == "open"]
    out.update(_closed(closed, ""))
    out.update(_open(opened, ""))
    if items:
        out["exact_match"] = _mean(exact_match(p, i.answer) for i, p in zip(items, predictions, strict=True))
        out["token_f1"] = _mean(token_f1(p, i.answer) for i, p in zip(items, predictions, strict=True))
    out["n_closed"] = float(len(closed))
    out["n_open"] = float(len(opened))
    if group_by is not None:
        for group in sorted({str(i.meta.get(group_by)) for i in items if group_by in i.meta}):
            out.update(_closed([(i, p) for i, p in closed if str(i.meta.get(group_by)) == group], f"/{group}"))
            out.update(_open([(i, p) for i, p in opened if str(i.meta.get(group_by)) == group], f"/{group}"))
    return out


def metrics_by(group_by: str) -> Callable[[Sequence[VQAItem], Sequence[str]], dict[str, float]]:
    """`vqa_metrics` with per-group entries on the item `meta` key `group_by` (a `Benchmark.metrics` callable)."""

    def score(items: Sequence[VQAItem], predictions: Sequence[str]) -> dict[str, float]:
        return vqa_metrics(items, predictions, group_by=group_by)

    return score


def closed_correct(item: VQAItem, prediction: str) -> bool:
    """Whether `prediction` answers the closed question `item` right, as `closed_accuracy` counts it: the first
    candidate it names is the reference (`Benchmark.correct`)."""
    return parse_closed(prediction, closed_candidates(item)) == normalize_answer(item.answer)


def _closed(pairs: list[tuple[VQAItem, str]], suffix: str) -> dict[str, float]:
    if not pairs:
        return {}
    from sklearn.metrics import accuracy_score  # imported here: it takes seconds, and `domain ls` needs none of it

    truth = [normalize_answer(i.answer) for i, _ in pairs]
    parsed = [parse_closed(p, closed_candidates(i)) for i, p in pairs]
    out = {f"closed_accuracy{suffix}": float(accuracy_score(truth, [p or NO_ANSWER for p in parsed]))}
    if not suffix:
        out["closed_no_answer"] = _mean(float(p is None) for p in parsed)
    return out


def _open(pairs: list[tuple[VQAItem, str]], suffix: str) -> dict[str, float]:
    if not pairs:
        return {}
    out = {f"open_recall{suffix}": _mean(token_recall(p, i.answer) for i, p in pairs)}
    if not suffix:
        out["open_token_f1"] = _mean(token_f1(p, i.answer) for i, p in pairs)
    return out


def _mean(values) -> float:
    values = list(values)
    return float(sum(values) / len(values)) if values else 0.0


def vqa_specs(primary: str = "closed_accuracy") -> dict[str, MetricSpec]:
    """What `vqa_metrics` returns (`Benchmark.metric_specs`), with `primary` (`"closed_accuracy"` or
    `"open_recall"`) as the benchmark's primary score."""
    specs = {
        "closed_accuracy": MetricSpec(description="share of closed questions whose first named candidate is right"),
        "closed_accuracy/*": MetricSpec(description="closed accuracy within one group of questions"),
        "open_recall": MetricSpec(description="mean share of the reference's tokens found in open answers"),
        "open_recall/*": MetricSpec(description="open recall within one group of questions"),
        "open_token_f1": MetricSpec(description="mean token F1 of open answers"),
        "exact_match": MetricSpec(description="share of answers equal to the reference after normalisation"),
        "token_f1": MetricSpec(description="mean token F1 of all answers"),
        "closed_no_answer": MetricSpec(
            kind="diagnostic", higher_is_better=False, description="share of closed answers naming no candidate"
        ),
        "n_closed": MetricSpec(kind="count", description="closed questions"),
        "n_open": MetricSpec(kind="count", description="open questions"),
    }
    if primary not in ("closed_accuracy", "open_recall"):
        raise ValueError(f"vqa_specs: primary must be closed_accuracy or open_recall, not {primary!r}")
    specs[primary] = MetricSpec(primary=True, description=specs[primary].description)
    return specs
