"""LLaVA + GPT-4 on ScienceQA: the two ensembles of the LLaVA paper (§5.2), as LLaVA's scripts compute them.

- **complement** (`llava/eval/eval_science_qa_gpt4.py`): take GPT-4's answer; where GPT-4's text has no parseable
  answer, take LLaVA's.
- **judge** (`llava/eval/eval_science_qa_gpt4_requery.py`, the 92.53 of the paper): where LLaVA and GPT-4 give
  different answers, GPT-4 is asked again with the question and both answers, and its re-query answer is final;
  where the re-query is missing or unparseable, LLaVA's answer is final. Where the two agree there is no re-query
  and the (shared) LLaVA answer stands. `needs_judge` lists the items to re-query; `judge_messages` builds the
  re-query (LLaVA did not publish its wording, so ours is stated as ours).

Both scripts parse every text with the single regular expression `The answer is ([A-Z]).`
(`parsing.parse_answer_regex`) and turn an unusable answer into `random.choice(range(len(choices)))`. Here the
parser is an argument (default: the scripts' regex) and the random guess is opt-in and seeded per item
(`unparsed="random"`, `seed`), so that the same inputs always give the same score; by default an unusable answer
is simply wrong, as in `eval_science_qa.py`. The result is one letter (or `"FAILED"`) per item, which
`scienceqa_metrics` scores like any prediction.

`ENSEMBLE` makes both reachable from a recipe (`evaluate.ensemble: complement | requery`, with `evaluate.judge` as
the client): `run_ensemble` asks the judge model each question as text (`answer_messages`: LLaVA's GPT-4 answers
came from a text-only GPT-4 too; the wording is ours), then, for `requery`, re-asks it where the two answers differ.
The model's own answers are first read with the benchmark's parser (`parse_answer`, which also reads LLaVA-1.5's bare
letters) and the judge model's with the scripts' regex.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Literal

from llava_adapt.plugin import AskFn, Ensemble, MetricSpec, VQAItem

from .parsing import FAILED, answer_index, parse_answer, parse_answer_regex
from .problems import OPTIONS

Parser = Callable[[str], str]
Unparsed = Literal["wrong", "random"]
KINDS = ("complement", "requery")
SYSTEM = "You are a helpful assistant that answers science questions."
ANSWER_FORMAT = "End with exactly one sentence of the form 'The answer is X.' where X is the option's letter."


def _check(items: Sequence[VQAItem], *columns: Sequence) -> None:
    for column in columns:
        if len(column) != len(items):
            raise ValueError(f"ScienceQA ensemble: {len(items)} items but a prediction list of {len(column)}")


def _letter(item: VQAItem, letter: str, unparsed: Unparsed, seed: int) -> str:
    rng = random.Random(f"{seed}:{item.id}") if unparsed == "random" else None
    index = answer_index(letter, len(item.choices), rng)
    return OPTIONS[index] if index >= 0 else FAILED


def complement_ensemble(
    items: Sequence[VQAItem],
    llava: Sequence[str],
    gpt4: Sequence[str],
    *,
    parser: Parser = parse_answer_regex,
    unparsed: Unparsed = "wrong",
    seed: int = 0,
) -> list[str]:
    """GPT-4's answer, or LLaVA's where GPT-4's does not parse.

    Args:
        items (`Sequence[VQAItem]`): the benchmark items.
        llava (`Sequence[str]`): LLaVA's answer texts, same order.
        gpt4 (`Sequence[str]`): GPT-4's answer texts, same order.
        parser (`Callable[[str], str]`, defaults to `parse_answer_regex`): text -> letter or `"FAILED"`.
        unparsed (`"wrong" | "random"`, defaults to `"wrong"`): what a final answer that is not a choice becomes.
        seed (`int`, defaults to `0`): seeds the per-item random guess when `unparsed="random"`.

    Returns:
        One letter (or `"FAILED"`) per item.
    """
    # the same rule as the judge ensemble, with GPT-4's first answer in the place of the re-query
    return judge_ensemble(items, llava, gpt4, parser=parser, unparsed=unparsed, seed=seed)


def needs_judge(
    items: Sequence[VQAItem], llava: Sequence[str], gpt4: Sequence[str], *, parser: Parser = parse_answer_regex
) -> list[int]:
    """Positions of the items where LLaVA's and GPT-4's parsed answers differ (the ones GPT-4 re-judges)."""
    _check(items, llava, gpt4)
    return [i for i, (ours, theirs) in enumerate(zip(llava, gpt4, strict=True)) if parser(ours) != parser(theirs)]


def judge_ensemble(
    items: Sequence[VQAItem],
    llava: Sequence[str],
    requery: Sequence[str | None],
    *,
    parser: Parser = parse_answer_regex,
    unparsed: Unparsed = "wrong",
    seed: int = 0,
) -> list[str]:
    """GPT-4's re-query answer where there is a parseable one, else LLaVA's.

    Args:
        items (`Sequence[VQAItem]`): the benchmark items.
        llava (`Sequence[str]`): LLaVA's answer texts, same order.
        requery (`Sequence[str | None]`): GPT-4's re-query texts, `None` where no re-query was made (the two
            models agreed, see `needs_judge`).
        parser (`Callable[[str], str]`, defaults to `parse_answer_regex`): text -> letter or `"FAILED"`.
        unparsed (`"wrong" | "random"`, defaults to `"wrong"`): what a final answer that is not a choice becomes.
        seed (`int`, defaults to `0`): seeds the per-item random guess when `unparsed="random"`.

    Returns:
        One letter (or `"FAILED"`) per item.
    """
    _check(items, llava, requery)
    out = []
    for item, ours, judged in zip(items, llava, requery, strict=True):
        letter = FAILED if judged is None else parser(judged)
        out.append(_letter(item, parser(ours) if letter == FAILED else letter, unparsed, seed))
    return out


def judge_messages(item: VQAItem, llava: str, gpt4: str) -> list[dict[str, str]]:
    """The re-query for one disagreement, as OpenAI chat messages (our wording; LLaVA's is unpublished).

    Args:
        item (`VQAItem`): the problem (its `question` holds the rendered question, context and options).
        llava (`str`): LLaVA's answer text.
        gpt4 (`str`): GPT-4's first answer text.
    """
    return [
        {"role": "system", "content": SYSTEM},
        {
            "role": "user",
            "content": (
                f"{item.question}\n\nTwo assistants answered this question.\n"
                f"Assistant 1 (it saw the image): {llava}\n"
                f"Assistant 2 (it did not see the image): {gpt4}\n\n"
                f"Considering the question and both answers, give your own final answer. {ANSWER_FORMAT}"
            ),
        },
    ]


def answer_messages(item: VQAItem) -> list[dict[str, str]]:
    """The judge model's own answer to one problem, as text (it sees no image), as OpenAI chat messages (our
    wording).

    Args:
        item (`VQAItem`): the problem (its `question` holds the rendered question, context and options).
    """
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"{item.question}\n\nThink step by step, then answer. {ANSWER_FORMAT}"},
    ]


def _canonical(answer: str) -> str:
    """The model's answer as `The answer is X.` when the benchmark's parser reads a letter in it, else as is."""
    letter = parse_answer(answer.strip())
    return f"The answer is {letter}." if letter != FAILED else answer


def run_ensemble(
    kind: str, items: Sequence[VQAItem], answers: Sequence[str], ask: AskFn
) -> tuple[list[str], dict[str, float]]:
    """Run one LLaVA + GPT-4 ensemble on the model's answers (`Ensemble.run`).

    Args:
        kind (`"complement" | "requery"`): `complement_ensemble`, or `judge_ensemble` after re-asking where the two
            answers differ.
        items (`Sequence[VQAItem]`): the problems.
        answers (`Sequence[str]`): the model's answers, same order.
        ask (`Callable[[list of messages], list[str | None]]`): sends requests to the judge model.

    Returns:
        One letter (or `"FAILED"`) per item, and counts: `n_judge_no_answer` (the judge model's first answers with
        no readable letter, failed requests included), `n_requeried` and `n_requery_no_answer` (`requery` only).
    """
    if kind not in KINDS:
        raise ValueError(f"ScienceQA ensemble {kind!r}: expected one of {KINDS}")
    _check(items, answers)
    ours = [_canonical(answer) for answer in answers]
    theirs = [reply or "" for reply in ask([answer_messages(item) for item in items])]
    counts = {"n_judge_no_answer": float(sum(parse_answer_regex(text) == FAILED for text in theirs))}
    if kind == "complement":
        return complement_ensemble(items, ours, theirs), counts
    positions = needs_judge(items, ours, theirs)
    replies = ask([judge_messages(items[i], answers[i], theirs[i]) for i in positions])
    requery: list[str | None] = [None] * len(items)
    for i, reply in zip(positions, replies, strict=True):
        requery[i] = reply or ""
    counts["n_requeried"] = float(len(positions))
    counts["n_requery_no_answer"] = float(sum(parse_answer_regex(reply or "") == FAILED for reply in replies))
    return judge_ensemble(items, ours, requery), counts


ENSEMBLE = Ensemble(
    kinds=KINDS,
    run=run_ensemble,
    description="LLaVA + GPT-4 (LLaVA paper §5.2): complement = the judge model's answer unless it has none; "
    "requery = the judge model re-answers, seeing both answers, where the two differ",
    metric_specs={
        "n_judge_no_answer": MetricSpec(
            kind="count", higher_is_better=False, description="judge model answers with no readable letter"
        ),
        "n_requeried": MetricSpec(kind="count", description="problems re-asked because the two answers differ"),
        "n_requery_no_answer": MetricSpec(
            kind="count", higher_is_better=False, description="re-query replies with no readable letter"
        ),
    },
)
