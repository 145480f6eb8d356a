"""The GPT-4-judged relative score of LLaVA-Bench (COCO and In-the-Wild), as LLaVA computes it.

Request (LLaVA's `eval_gpt_review_visual.py` for COCO, `eval_gpt_review_bench.py` for In-the-Wild): the system
message `JUDGE_SYSTEM`, then one user message::

    [Context]
    {captions and boxes, or the caption}

    [Question]
    {question}

    [Assistant 1]
    {GPT-4's reference answer}

    [End of Assistant 1]

    [Assistant 2]
    {the model's answer}

    [End of Assistant 2]

    [System]
    {the rule for the question's category}

The rules are LLaVA's `llava/eval/table/rule.json`, word for word so that scores stay comparable: keys `conv`,
`detail`, `complex` for COCO (the context is five captions and normalised boxes) and `llava_bench_conv`,
`llava_bench_detail`, `llava_bench_complex` for In-the-Wild (a few sentences). Within each benchmark the three
categories' rules have the same text; an item names its key in `meta["rule"]` (set by `llava_bench.py`).

Reply parsing (`parse_scores`), LLaVA's `parse_score`: the reply's first line, commas turned into spaces, must hold
exactly two numbers — the reference's score, then the model's. Two deliberate differences: the first non-blank
line is read and any run of whitespace separates (LLaVA splits on single spaces, so it rejects `"8, 6"` and
`"8 6 "`); and only plain decimal numbers from 0 to 10 count (LLaVA's `float` also takes `nan`, `inf`, `80`).

Aggregation (`relative_scores`), LLaVA's `summarize_gpt_review.py`, overall and per category:

- `relative_score` = `mean(model) / mean(reference) x 100` — a **ratio of means**, LLaVA-Bench's number;
- `relative_score_mean_of_ratios` = the mean over questions of `model / reference x 100` (LLaVA-Med's way), beside
  it: a question where the reference scores low weighs more here;
- `reference_score`, `model_score`: the mean raw scores (1-10). LLaVA prints them x 10.

Unlike LLaVA, which keeps a reply it cannot parse as `(-1, -1)` inside the averages, replies that do not parse and
requests that failed for good are left out of every mean and counted in `judge_failures`. Questions whose reference
score is 0 are left out of the mean of ratios only, and counted in `zero_reference`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from llava_adapt.plugin import DataError, Judge, MetricSpec, VQAItem

from .llava_bench import CATEGORIES

JUDGE_SYSTEM = "You are a helpful and precise assistant for checking the quality of the answer."

_REQUEST = (
    "We would like to request your feedback on the performance of two AI assistants in response to the user "
    "question displayed above. The user asks the question on observing an image. For your reference, the visual "
    "content in the image is represented with "
)
_COCO_CONTEXT = (
    "five descriptive sentences describing the same image and the bounding box coordinates of each object in the "
    "scene. These coordinates are in the form of bounding boxes, represented as (x1, y1, x2, y2) with floating "
    "numbers ranging from 0 to 1. These values correspond to the top left x, top left y, bottom right x, and bottom "
    "right y. \n"
)
_WILD_CONTEXT = "a few sentences describing the image. \n"
_RATING = (
    "Please rate the helpfulness, relevance, accuracy, level of details of their responses. Each assistant receives "
    "an overall score on a scale of 1 to 10, where a higher score indicates better overall performance.\n"
    "Please first output a single line containing only two values indicating the scores for Assistant 1 and 2, "
    "respectively. The two scores are separated by a space.\n"
    "In the subsequent line, please provide a comprehensive explanation of your evaluation, avoiding any potential "
    "bias and ensuring that the order in which the responses were presented does not affect your judgment."
)
COCO_RULE = _REQUEST + _COCO_CONTEXT + _RATING
WILD_RULE = _REQUEST + _WILD_CONTEXT + _RATING
RULES = {**{c: COCO_RULE for c in CATEGORIES}, **{f"llava_bench_{c}": WILD_RULE for c in CATEGORIES}}
ROLE = "Assistant"

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


def judge_messages(context: str, question: str, reference: str, answer: str, rule: str) -> list[dict[str, str]]:
    """The Chat Completions messages that ask the judge to score `reference` (Assistant 1) and `answer` (Assistant 2).

    Args:
        context (`str`): what stands in for the image (captions and boxes, or a description).
        question (`str`): the question.
        reference (`str`): GPT-4's reference answer.
        answer (`str`): the model's answer.
        rule (`str`): a key of `RULES` (`conv`, ..., `llava_bench_complex`).

    Raises:
        DataError: `rule` is not a key of `RULES`.
    """
    if rule not in RULES:
        raise DataError(f"no LLaVA-Bench judge rule {rule!r}; known: {', '.join(RULES)}")
    content = (
        f"[Context]\n{context}\n\n[Question]\n{question}\n\n"
        f"[{ROLE} 1]\n{reference}\n\n[End of {ROLE} 1]\n\n"
        f"[{ROLE} 2]\n{answer}\n\n[End of {ROLE} 2]\n\n[System]\n{RULES[rule]}\n\n"
    )
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": content}]


def parse_scores(reply: str) -> tuple[float, float] | None:
    """`(reference score, model score)` from the first non-blank line of a judge reply, or `None` when that line
    does not hold exactly two numbers from 0 to 10 (separated by spaces and/or commas)."""
    lines = reply.strip().splitlines()
    parts = lines[0].replace(",", " ").split() if lines else []
    if len(parts) != 2 or not all(_NUMBER.fullmatch(p) for p in parts):
        return None
    reference, model = float(parts[0]), float(parts[1])
    if not (0 <= reference <= 10 and 0 <= model <= 10):
        return None
    return reference, model


def relative_scores(categories: Sequence[str], scores: Sequence[tuple[float, float] | None]) -> dict[str, float]:
    """Aggregate parsed scores overall and per category (see the module docstring).

    Args:
        categories (`Sequence[str]`): each question's category (`conv`, `detail`, `complex`).
        scores (`Sequence[tuple[float, float] | None]`): `(reference, model)` per question, same order; `None` where
            the judge gave no usable reply.

    Returns:
        `dict[str, float]`: `relative_score`, `relative_score_mean_of_ratios`, `reference_score`, `model_score` and
        the same with a `/<category>` suffix for each category with a scored question; `n_scored`,
        `judge_failures` and `zero_reference`. A ratio whose denominator is 0 is left out.
    """
    if len(categories) != len(scores):
        raise ValueError(f"{len(categories)} categories but {len(scores)} scores")
    scored = [(category, pair) for category, pair in zip(categories, scores, strict=True) if pair is not None]
    pairs = [pair for _, pair in scored]
    out = {"n_scored": float(len(pairs)), "judge_failures": float(len(scores) - len(pairs)),
           "zero_reference": float(sum(1 for reference, _ in pairs if reference == 0))}  # fmt: skip
    out.update(_means(pairs, ""))
    for category in sorted({c for c, _ in scored}):
        out.update(_means([pair for c, pair in scored if c == category], f"/{category}"))
    return out


def _means(pairs: list[tuple[float, float]], suffix: str) -> dict[str, float]:
    if not pairs:
        return {}
    reference = sum(r for r, _ in pairs) / len(pairs)
    model = sum(m for _, m in pairs) / len(pairs)
    out = {f"reference_score{suffix}": reference, f"model_score{suffix}": model}
    if reference > 0:
        out[f"relative_score{suffix}"] = model / reference * 100.0
    ratios = [m / r * 100.0 for r, m in pairs if r > 0]
    if ratios:
        out[f"relative_score_mean_of_ratios{suffix}"] = sum(ratios) / len(ratios)
    return out


def messages(item: VQAItem, answer: str) -> list[dict[str, str]]:
    """The judge request for a LLaVA-Bench item (COCO or In-the-Wild) and the model's answer (`Judge.messages`)."""
    meta = item.meta
    return judge_messages(str(meta["context"]), item.question, item.answer, answer, str(meta["rule"]))


def score(items: Sequence[VQAItem], replies: Sequence[str | None]) -> dict[str, float]:
    """Parse the judge's replies (`None`: the request failed) and aggregate them per category (`Judge.score`)."""
    if len(items) != len(replies):
        raise ValueError(f"{len(items)} items but {len(replies)} replies")
    parsed = [None if reply is None else parse_scores(reply) for reply in replies]
    return relative_scores([str(item.meta.get("category", "")) for item in items], parsed)


JUDGE = Judge(
    messages=messages,
    score=score,
    description="LLaVA-Bench relative score: mean(model) / mean(GPT-4 reference) judge score x 100, per category",
    metric_specs={
        "relative_score": MetricSpec(
            percent=True, primary=True, description="mean model / mean reference judge score x 100"
        ),
        "relative_score/*": MetricSpec(percent=True, description="relative score within one category"),
        "relative_score_mean_of_ratios": MetricSpec(
            percent=True, description="mean over questions of model / reference judge score x 100"
        ),
        "relative_score_mean_of_ratios/*": MetricSpec(percent=True, description="the same within one category"),
        "reference_score": MetricSpec(
            kind="baseline", baseline_for="model_score", description="mean judge score (0-10) of GPT-4's answer"
        ),
        "reference_score/*": MetricSpec(kind="baseline", description="the same within one category"),
        "model_score": MetricSpec(kind="diagnostic", description="mean judge score (0-10) of the model's answer"),
        "model_score/*": MetricSpec(kind="diagnostic", description="the same within one category"),
        "n_scored": MetricSpec(kind="count", description="answers the judge scored"),
        "judge_failures": MetricSpec(
            kind="count", higher_is_better=False, description="answers with no usable judge reply (left out)"
        ),
        "zero_reference": MetricSpec(
            kind="count", higher_is_better=False, description="scored answers whose reference scored 0 (left out)"
        ),
    },
)
