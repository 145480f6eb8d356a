"""GPT-4-judged relative score for free-form biomedical chat (LLaVA-Med's visual-chat evaluation).

For each question the judge sees the figure caption (and in-text mentions) in place of the image, the question,
a reference answer (Assistant 1: text-only GPT-4 given the caption) and the model's answer (Assistant 2), and
replies with a first line holding two scores from 1 to 10. `parse_scores` reads that line;
`relative_scores` aggregates.

Aggregation (stated, because the two LLaVA repositories differ):

- `relative_score` = mean over items of `model / reference × 100` — LLaVA-Med's `summarize_gpt_review.py`;
- `relative_score_ratio_of_means` = `mean(model) / mean(reference) × 100` — LLaVA's (LLaVA-Bench) formula.

Unlike LLaVA's `parse_score`, which keeps a failed parse as `(-1, -1)` inside the averages, replies that do not
parse are left out and counted in `judge_failures`; items whose reference score is 0 are left out of the mean of
ratios and counted in `zero_reference`.

`JUDGE` plugs this into the `llava_med_chat` benchmark; the core (`llava_adapt.evaluate.judge`) sends the requests
through the generation engine's client (concurrency, rate limits, retries, cache) when the recipe sets
`evaluate.judge`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from llava_adapt.plugin import Judge, MetricSpec, VQAItem

JUDGE_SYSTEM = "You are a helpful and precise assistant for checking the quality of the answer."

# LLaVA-Med's `INSTRUCT_PROMPT` (`llava/eval/eval_multimodal_chat_gpt_score.py`), character for character: its
# wording ("with caption", "level of details") and its line breaks indented by two spaces. Judge scores depend on it.
JUDGE_RULE = (
    "We would like to request your feedback on the performance of two AI assistants in response to the user "
    "question displayed above. The user asks the question on observing an image. For your reference, the visual "
    "content in the image is represented with caption describing the same image.\n"
    "  Please rate the helpfulness, relevance, accuracy, level of details of their responses. Each assistant "
    "receives an overall score on a scale of 1 to 10, where a higher score indicates better overall performance.\n"
    "  Please first output a single line containing only two values indicating the scores for Assistant 1 and 2, "
    "respectively. The two scores are separated by a space. In the subsequent line, please provide a comprehensive "
    "explanation of your evaluation, avoiding any potential bias and ensuring that the order in which the responses "
    "were presented does not affect your judgment."
)

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


@dataclass(frozen=True)
class ChatQuestion:
    """One visual-chat question to judge.

    Args:
        id (`str`): question id.
        question (`str`): the question, without `<image>`.
        caption (`str`): the figure caption (with its label, e.g. `"Figure 2: ..."`), standing in for the image.
        reference (`str`): the reference answer (Assistant 1).
        mentions (`tuple[str, ...]`, defaults to `()`): in-text mentions of the figure.
        category (`str`, defaults to `"conversation"`): question type (`conversation`, `detailed_description`).
        domain (`str`, defaults to `""`): image domain (chest_xray, mri, histology, gross, ct_scan).
    """

    id: str
    question: str
    caption: str
    reference: str
    mentions: tuple[str, ...] = ()
    category: str = "conversation"
    domain: str = ""


@dataclass(frozen=True)
class Judgement:
    """The judge's verdict on one question: `scores` is `(reference, model)`, or `None` when the reply did not
    parse; `reply` is the raw text."""

    question: ChatQuestion
    scores: tuple[float, float] | None
    reply: str


def judge_messages(question: ChatQuestion, answer: str) -> list[dict[str, str]]:
    """The chat messages sent to the judge for one question and model answer (LLaVA-Med's layout)."""
    context = f"Figure Caption:\n{question.caption}"
    if question.mentions:
        context += "\n\nFigure Context:\n" + "\n".join(f"\t- {m}" for m in question.mentions)
    content = (
        f"[Context]\n{context}\n\n[Question]\n{question.question}\n\n"
        f"[Assistant 1]\n{question.reference}\n\n[End of Assistant 1]\n\n"
        f"[Assistant 2]\n{answer}\n\n[End of Assistant 2]\n\n[System]\n{JUDGE_RULE}\n\n"
    )
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": content}]


def parse_scores(reply: str) -> tuple[float, float] | None:
    """Read `"score1 score2"` from the first non-empty line of a judge reply (commas allowed as separators).

    Returns `None` unless that line holds exactly two numbers between 0 and 10.
    """
    lines = [line for line in reply.strip().splitlines() if line.strip()]
    if not lines:
        return None
    parts = lines[0].replace(",", " ").split()
    if len(parts) != 2 or not all(_NUMBER.match(p) for p in parts):
        return None
    first, second = float(parts[0]), float(parts[1])
    if not (0 <= first <= 10 and 0 <= second <= 10):
        return None
    return first, second


def item_question(item: VQAItem) -> ChatQuestion:
    """The `ChatQuestion` of a `llava_med_chat` item (caption, mentions, type and domain come from its `meta`)."""
    meta = item.meta
    return ChatQuestion(
        id=item.id,
        question=item.question,
        caption=str(meta.get("caption", "")),
        reference=item.answer,
        mentions=tuple(str(m) for m in meta.get("mentions", ())),
        category=str(meta.get("category", "conversation")),
        domain=str(meta.get("domain", "")),
    )


def messages(item: VQAItem, answer: str) -> list[dict[str, str]]:
    """The judge request for one benchmark item and the model's answer (`Judge.messages`)."""
    return judge_messages(item_question(item), answer)


def score(items: Sequence[VQAItem], replies: Sequence[str | None]) -> dict[str, float]:
    """Aggregate the judge's replies (`None`: the request failed) with `relative_scores` (`Judge.score`)."""
    if len(items) != len(replies):
        raise ValueError(f"{len(items)} items but {len(replies)} replies")
    judgements = [
        Judgement(item_question(item), None if reply is None else parse_scores(reply), reply or "")
        for item, reply in zip(items, replies, strict=True)
    ]
    return relative_scores(judgements)


JUDGE = Judge(
    messages=messages,
    score=score,
    description="LLaVA-Med relative score: mean over questions of model/reference judge score x 100",
    metric_specs={
        "relative_score": MetricSpec(
            percent=True, primary=True, description="mean over questions of model / reference judge score x 100"
        ),
        "relative_score/*": MetricSpec(percent=True, description="relative score within one category or domain"),
        "relative_score_ratio_of_means": MetricSpec(
            percent=True, description="mean model / mean reference judge score x 100 (LLaVA's formula)"
        ),
        "reference_score": MetricSpec(
            kind="baseline", baseline_for="model_score", description="mean judge score (1-10) of the reference answer"
        ),
        "model_score": MetricSpec(kind="diagnostic", description="mean judge score (1-10) of the model's answer"),
        "n_scored": MetricSpec(kind="count", description="answers the judge scored"),
        "judge_failures": MetricSpec(
            kind="count", higher_is_better=False, description="answers with no usable judge reply (left out)"
        ),
        "zero_reference": MetricSpec(
            kind="count", higher_is_better=False, description="scored answers whose reference scored 0 (left out)"
        ),
    },
)


def relative_scores(judgements: Sequence[Judgement]) -> dict[str, float]:
    """Aggregate judgements overall, per category and per domain (see the module docstring).

    Returns:
        `dict[str, float]`: `relative_score`, `relative_score_ratio_of_means`, `reference_score`, `model_score`
        (mean raw scores), `n_scored`, `judge_failures`, `zero_reference`, and `relative_score/<category>`,
        `relative_score/<domain>` for each category and domain present.
    """
    groups: dict[str, list[tuple[float, float]]] = defaultdict(list)
    failures = 0
    for judgement in judgements:
        if judgement.scores is None:
            failures += 1
            continue
        groups[""].append(judgement.scores)
        groups[f"/{judgement.question.category}"].append(judgement.scores)
        if judgement.question.domain:
            groups[f"/{judgement.question.domain}"].append(judgement.scores)
    out: dict[str, float] = {"judge_failures": float(failures), "n_scored": float(len(groups[""]))}
    out["zero_reference"] = float(sum(1 for ref, _ in groups[""] if ref == 0))
    for suffix, pairs in groups.items():
        ratios = [model / ref * 100.0 for ref, model in pairs if ref > 0]
        if ratios:
            out[f"relative_score{suffix}"] = sum(ratios) / len(ratios)
        if not suffix and pairs:
            ref_mean = sum(ref for ref, _ in pairs) / len(pairs)
            model_mean = sum(model for _, model in pairs) / len(pairs)
            out["reference_score"] = ref_mean
            out["model_score"] = model_mean
            if ref_mean > 0:
                out["relative_score_ratio_of_means"] = model_mean / ref_mean * 100.0
    return out
