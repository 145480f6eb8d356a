"""The ScienceQA benchmarks: LLaVA's prompts over any layout, scored with the published metrics.

Two prompts, one loader:

- `scienceqa`: `"{question}\\nAnswer with the option's letter from the given choices directly."` — LLaVA-1.5's
  `--single-pred-prompt`; the model answers with a letter.
- `scienceqa_explain`: `"{question}"` alone — how LLaVA (v1) was evaluated after fine-tuning on `QCM-LEA`; the model
  writes the lecture and the explanation, then `The answer is X.` (allow `evaluate.max_new_tokens` ~512+).

`VQAItem.question` carries the whole rendered input (question, `Context:` and `Options:` lines, see `render.py`),
so a prompt needs only `{question}`; `VQAItem.choices` carries the option texts and `VQAItem.answer` the letter.

Problems without an image (half of ScienceQA, counted in the published Avg/TXT/NO numbers) are kept by default
and point at the blank placeholder image (`images.py`); `image_only: true` drops them (counted as `"no image"`),
which gives the SQA-IMG subset LLaVA-1.5 reports. `meta["has_image"]` always tells the truth, whatever image
the item points at.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from llava_adapt.plugin import Benchmark, Skip, SourceContext, VQAItem, relative_to_root

from .ensemble import ENSEMBLE
from .images import blank_image
from .layouts import Layout, LayoutError, detect_layout
from .llava_json import read_llava_json
from .loading import NO_IMAGE, Located, dataset_path, iter_problems
from .metrics import SCIENCEQA_SPECS, answer_correct, scienceqa_metrics
from .problems import OPTIONS
from .render import SINGLE_PRED_PROMPT, InputFormat, render_input
from .synthetic import synthetic_context

LETTER_PROMPT = "{question}\n" + SINGLE_PRED_PROMPT


class ScienceQABenchmarkArgs(BaseModel):
    """Arguments of the `scienceqa` benchmarks (`evaluate.args.scienceqa` in a recipe).

    Args:
        path (`str`, defaults to `"."`): the data set, relative to the data root: a lupantech folder
            (`problems.json`, `pid_splits.json`, `images/`), a folder or file of HF parquet, or a LLaVA-converted
            `llava_<split>_<format>.json`.
        split (`str`, defaults to `"test"`): `test` (4,241 problems, the published numbers), `val`, `minitest`, ...
        layout (`"auto" | "lupantech" | "parquet" | "llava"`, defaults to `"auto"`): the file layout.
        prompt_format (`"QCM" | "CQM"`, defaults to `"QCM"`): LLaVA's fine-tuning order (question, context, options)
            or LLaVA-1.5's eval order (context first). Ignored for the `llava` layout, whose text is used as is.
        image_only (`bool`, defaults to `False`): keep only problems with an image (SQA-IMG).
        limit (`int | None`, defaults to `None`): only the first N questions (a quick trial).
    """

    model_config = ConfigDict(extra="forbid")

    path: str = "."
    split: str = "test"
    layout: Layout = "auto"
    prompt_format: InputFormat = "QCM"
    image_only: bool = False
    limit: int | None = Field(None, ge=1)


def _items(args: ScienceQABenchmarkArgs, ctx: SourceContext) -> Iterator[VQAItem | Skip]:
    full = dataset_path(args.path, ctx)
    layout = detect_layout(full, args.split) if args.layout == "auto" else args.layout
    if layout != "llava":
        for found in iter_problems(args.path, args.split, layout, ctx, "skip" if args.image_only else "blank"):
            if isinstance(found, Skip):
                yield found
                continue
            yield _item(found, args.prompt_format)
        return
    if not full.is_file():
        raise LayoutError(f"{full}: the llava layout reads one llava_<split>_<format>.json file")
    for q in read_llava_json(full, args.split):
        if isinstance(q, Skip):
            yield q
            continue
        if q.image is None and args.image_only:
            yield Skip(id=q.pid, reason=NO_IMAGE)
            continue
        meta = q.problem.meta() if q.problem is not None else {"pid": q.pid}
        meta |= {"answer_index": q.answer, "has_image": q.image is not None}
        image = blank_image(ctx.output_dir) if q.image is None else relative_to_root(ctx.data_root, q.image)
        yield VQAItem(q.pid, image, q.question, OPTIONS[q.answer], "closed", choices=q.choices, meta=meta)


def _item(found: Located, prompt_format: InputFormat) -> VQAItem:
    p = found.problem
    return VQAItem(
        id=p.pid,
        image=found.image or "",
        question=render_input(p.question, p.hint, p.choices, prompt_format),
        answer=p.answer_letter,
        answer_type="closed",
        choices=list(p.choices),
        meta=p.meta(),
    )


def load_benchmark(args: ScienceQABenchmarkArgs, ctx: SourceContext) -> Iterator[VQAItem | Skip]:
    """Yield ScienceQA questions as `VQAItem`s (closed, answer = option letter), or `Skip`s with reasons.

    Args:
        args (`ScienceQABenchmarkArgs`): the benchmark's arguments.
        ctx (`SourceContext`): data root (the data set must be inside it), output folder for written images.

    Raises:
        LayoutError: the data set is missing, in no known layout, or malformed (naming file and key).
        ProblemError: a malformed problem (naming file, problem id and key).
    """
    kept = 0
    for item in _items(args, ctx):
        if isinstance(item, VQAItem):
            if args.limit is not None and kept >= args.limit:
                return
            kept += 1
        yield item


class SyntheticBenchmarkArgs(BaseModel):
    """Arguments of the `synthetic` benchmark (the offline `tiny` preset): the test split of the `synthetic` source.

    Args:
        n_train (`int`, defaults to `200`): the `synthetic` source's, so that both build the same folder; the test
            problems do not depend on it (each split has its own random stream), only their ids do.
        n_test (`int`, defaults to `48`): test problems.
        split (`str`, defaults to `"test"`): the split to evaluate.
        prompt_format (`"QCM" | "CQM"`, defaults to `"QCM"`): as for `scienceqa`.
        image_only (`bool`, defaults to `False`): as for `scienceqa`.
    """

    model_config = ConfigDict(extra="forbid")

    n_train: int = Field(200, ge=1)
    n_test: int = Field(48, ge=1)
    split: Literal["train", "test"] = "test"
    prompt_format: InputFormat = "QCM"
    image_only: bool = False


def load_synthetic_benchmark(args: SyntheticBenchmarkArgs, ctx: SourceContext) -> Iterator[VQAItem | Skip]:
    """Synthesise the set of the `synthetic` source under `ctx.output_dir` and yield its `split` as questions."""
    folder, inner = synthetic_context(args.n_train, args.n_test, ctx)
    full = ScienceQABenchmarkArgs(
        path=folder, split=args.split, layout="lupantech", prompt_format=args.prompt_format, image_only=args.image_only
    )
    yield from _items(full, inner)


scienceqa_benchmark = Benchmark(
    description="ScienceQA multiple choice (LLaVA-1.5 letter prompt); accuracy overall, by subject/context/grade",
    load=load_benchmark,
    metrics=scienceqa_metrics,
    metric_specs=SCIENCEQA_SPECS,
    correct=answer_correct,
    ensemble=ENSEMBLE,
    args=ScienceQABenchmarkArgs,
    prompt=LETTER_PROMPT,
)

scienceqa_explain_benchmark = Benchmark(
    description="ScienceQA answered with lecture + explanation + 'The answer is X.' (LLaVA QCM-LEA style)",
    load=load_benchmark,
    metrics=scienceqa_metrics,
    metric_specs=SCIENCEQA_SPECS,
    correct=answer_correct,
    ensemble=ENSEMBLE,
    args=ScienceQABenchmarkArgs,
    prompt="{question}",
)

synthetic_benchmark = Benchmark(
    description="the test split of the synthetic source, with the scienceqa prompt and metrics (tiny preset)",
    load=load_synthetic_benchmark,
    metrics=scienceqa_metrics,
    metric_specs=SCIENCEQA_SPECS,
    correct=answer_correct,
    ensemble=ENSEMBLE,
    args=SyntheticBenchmarkArgs,
    prompt=LETTER_PROMPT,
)
