"""ScienceQA problems as image–caption records: the input of `prepare`, `align` and `generate`.

ScienceQA has no captions. LLaVA did not align on it (its projector came from general captions, LCS-558K) and
fine-tuned on the problems directly. This source therefore serves two purposes:

- **stage 2 / generate**: every record carries the whole problem — in `context` (allow-listed, what a GPT-4
  teacher may see: question, hint, options, answer, lecture, solution) and in `labels` (what the offline generator
  uses to write LLaVA's QCM → LEA conversations). This is the part that matters.
- **stage 1 / align**: the caption is the problem's own text about the image — by default the question and the
  hint (`caption_fields`), the closest thing ScienceQA has to a description ("Which animal's feet are adapted
  for ...?" / "Figure: Mount Everest."). It is a weak caption: for real runs start from a LLaVA checkpoint or align
  on a general caption set, as LLaVA did.

Problems without an image are skipped (`"no image"`) by default; `no_image: blank` keeps them with the blank
placeholder image (LLaVA trains them with a zero image tensor, see `images.py`), so all 12,726 training problems
reach stage 2.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from llava_adapt.plugin import CaptionRecord, Skip, Source, SourceContext

from .loading import NoImage, iter_problems
from .problems import Problem
from .render import choice_text, context_text
from .synthetic import synthetic_context

CaptionField = Literal["question", "hint", "lecture", "solution"]


class ScienceQASourceArgs(BaseModel):
    """Arguments of the `problems` source (`data.args` in a recipe).

    Args:
        path (`str`, defaults to `"."`): the data set, relative to `data.root` (lupantech folder or HF parquet).
        split (`str`, defaults to `"train"`): the split to read.
        layout (`"auto" | "lupantech" | "parquet"`, defaults to `"auto"`): the file layout.
        caption_fields (`list[str]`, defaults to `["question", "hint"]`): the fields joined (one per line, empty ones
            left out) into the stage-1 caption.
        no_image (`"skip" | "blank"`, defaults to `"skip"`): what to do with problems that have no image.
        limit (`int | None`, defaults to `None`): only the first N records.
    """

    model_config = ConfigDict(extra="forbid")

    path: str = "."
    split: str = "train"
    layout: Literal["auto", "lupantech", "parquet"] = "auto"
    caption_fields: list[CaptionField] = Field(default_factory=lambda: ["question", "hint"], min_length=1)
    no_image: NoImage = "skip"
    limit: int | None = Field(None, ge=1)


def problem_record(problem: Problem, image: str, caption_fields: list[str]) -> CaptionRecord:
    """The caption record of one problem (see the module docstring for what goes where)."""
    caption = "\n".join(getattr(problem, f).strip() for f in caption_fields if getattr(problem, f).strip())
    options = choice_text(problem.choices)
    context = {
        "question": problem.question,
        "hint": context_text(problem.hint),
        "options": options,
        "answer": f"({problem.answer_letter}) {problem.choices[problem.answer]}",
        "lecture": problem.lecture,
        "solution": problem.solution,
    }
    labels = {
        "question": problem.question,
        "hint": problem.hint,
        "choices": json.dumps(list(problem.choices), ensure_ascii=False),
        "answer": problem.answer_letter,
        "lecture": problem.lecture,
        "solution": problem.solution,
        "subject": problem.subject,
        "grade": problem.grade,
        "has_image": "true" if problem.has_image else "false",
    }
    return CaptionRecord(
        id=problem.pid, image=image, caption=caption or problem.question, context=context, labels=labels
    )


def _records(args: ScienceQASourceArgs, ctx: SourceContext) -> Iterator[CaptionRecord | Skip]:
    kept = 0
    for found in iter_problems(args.path, args.split, args.layout, ctx, args.no_image):
        if isinstance(found, Skip):
            yield found
            continue
        if args.limit is not None and kept >= args.limit:
            return
        kept += 1
        yield problem_record(found.problem, found.image or "", list(args.caption_fields))


def load_problems(args: ScienceQASourceArgs, ctx: SourceContext) -> Iterator[CaptionRecord | Skip]:
    """Yield one `CaptionRecord` per ScienceQA problem of `args.split`, or a `Skip` with its reason.

    Raises:
        LayoutError: the data set is missing, in no known layout, or malformed (naming file and key).
        ProblemError: a malformed problem (naming file, problem id and key).
    """
    yield from _records(args, ctx)


class SyntheticSourceArgs(BaseModel):
    """Arguments of the `synthetic` source (the offline `tiny` preset).

    Args:
        n_train (`int`, defaults to `200`): training problems to synthesise.
        n_test (`int`, defaults to `48`): test problems (read by the `synthetic` benchmark).
        split (`str`, defaults to `"train"`): the split to yield.
        caption_fields (`list[str]`, defaults to `["question", "hint"]`): as for `problems`.
        no_image (`"skip" | "blank"`, defaults to `"blank"`): as for `problems`; blank keeps every kind of problem.
    """

    model_config = ConfigDict(extra="forbid")

    n_train: int = Field(200, ge=1)
    n_test: int = Field(48, ge=1)
    split: Literal["train", "test"] = "train"
    caption_fields: list[CaptionField] = Field(default_factory=lambda: ["question", "hint"], min_length=1)
    no_image: NoImage = "blank"


def load_synthetic(args: SyntheticSourceArgs, ctx: SourceContext) -> Iterator[CaptionRecord | Skip]:
    """Synthesise a small ScienceQA-shaped set (see `synthetic.py`) and yield its `split` as caption records."""
    folder, inner = synthetic_context(args.n_train, args.n_test, ctx)
    inner_args = ScienceQASourceArgs(
        path=folder, split=args.split, layout="lupantech", caption_fields=args.caption_fields, no_image=args.no_image
    )
    yield from _records(inner_args, inner)


def count_synthetic(args: SyntheticSourceArgs, ctx: SourceContext) -> int | None:
    """The records `load_synthetic` yields: every problem of the split with `no_image: blank`; `None` with `skip`
    (which problems have no image is drawn at random)."""
    if args.no_image != "blank":
        return None
    return args.n_train if args.split == "train" else args.n_test


problems_source = Source(
    description="ScienceQA problems (lupantech problems.json + images, or HF parquet) as image + question records",
    load=load_problems,
    args=ScienceQASourceArgs,
)

synthetic_source = Source(
    description="a tiny synthetic ScienceQA-shaped set built in code (offline tiny preset, tests)",
    load=load_synthetic,
    args=SyntheticSourceArgs,
    count=count_synthetic,
)
