"""Stage `evaluate`: answer each benchmark's questions with the trained model (and the untrained one).

The trained model is the last training stage's output: `finetune/` or `instruct/` (an adapter is merged into its
base), or `align/`. With `evaluate.baseline`, the model as assembled before any training is scored too, so that
`eval/<benchmark>/metrics.json` shows before and after side by side. When `instruct` also trained stage 2 without
`align` (`instruct.compare_without_align`, LLaVA's "no stage 1" ablation), that model is scored too (after
`finetune`, its fine-tuned copy `finetune/without_align/`, so that both went through the same training).

The work is `llava_adapt.evaluate.benchmark.evaluate_benchmarks`, which `llava-adapt eval` calls too; this stage turns
the recipe into its arguments and records the counts and metrics. Per benchmark it writes:

- `predictions.jsonl`: one row per question (id, question, reference, prediction, and `correct` for closed ones);
- `baseline_predictions.jsonl`: the same for the untrained model;
- `without_align_predictions.jsonl`: the same for the stage-2-only model, when there is one;
- `metrics.json`: `{"benchmark", "domain", "model", "num_items", "prompt_example", "metrics": {...}, "baseline": {...},
  "without_align": {...}, "args", "skipped"}`, metrics from the benchmark's own metric function, and `notes` (the
  benchmark's caveats about its question set, e.g. answer types guessed by a rule) when it has any, and what each
  metric means: `metric_specs` (the benchmark's declarations of the names reported: score, baseline, count or
  diagnostic) and `primary_metric` (`llava_adapt.evaluate.metric_spec`), so that the card, the report and
  `llava-adapt eval` need no plugin.

With `tracking.report_to`, the metrics of every model scored also go to the run's tracker, under
`eval/<benchmark>/<model>/<metric>` (`llava_adapt.train.tracking`).

With `evaluate.ensemble` (and `evaluate.judge` as the client), a benchmark that offers that ensemble combines the
trained model's answers with the judge model's (LLaVA's ScienceQA + GPT-4 ensembles): `ensemble.jsonl` holds each
final answer, `metrics.json` its scores under `ensemble` (the same metrics, next to the model's own) and what was
asked under `ensemble_info`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from llava_adapt.data.records import VQAItem
from llava_adapt.domain import Benchmark
from llava_adapt.evaluate.benchmark import (
    ROLES,
    EvalSettings,
    EvaluateError,
    Loader,
    benchmark_tasks,
    evaluate_benchmarks,
    load_benchmark,
)
from llava_adapt.model.load import load_model, load_trained, resolve_dtype
from llava_adapt.stages.context import StageContext
from llava_adapt.stages.instruct import without_align_model
from llava_adapt.stages.model_source import start_model
from llava_adapt.train.tracking import evaluation_logs, log_evaluation, stage_tracker

__all__ = ["EvaluateError", "load_items", "run", "trained_model_dir"]


def load_items(
    ctx: StageContext,
    name: str,
    bench: Benchmark,
    args: dict[str, Any] | None = None,
    output_dir: Path | None = None,
) -> tuple[list[VQAItem], list[Path]]:
    """Load a benchmark's items for a stage (`load_benchmark`), counting kept and skipped items in `ctx`.

    Args:
        ctx (`StageContext`): the stage's context (recipe, counts).
        name (`str`): the benchmark's name (it prefixes skip reasons).
        bench (`Benchmark`): the benchmark.
        args (`dict[str, Any]`, *optional*): its loader arguments; defaults to `evaluate.args.<name>`.
        output_dir (`Path`, *optional*): where its loader may write images; defaults to `eval/<name>/images`.

    Raises:
        EvaluateError: no item is usable.
    """
    args = ctx.recipe.evaluate.args.get(name, {}) if args is None else args
    output_dir = output_dir or ctx.layout.benchmark_dir(name) / "images"
    loaded = load_benchmark(name, bench, args, Path(ctx.recipe.data.root), output_dir, ctx.recipe.seed)
    for reason, n in loaded.skipped.items():
        ctx.skip(reason, n)
    ctx.keep(len(loaded.items))
    return loaded.items, loaded.paths


def trained_model_dir(ctx: StageContext) -> Path | None:
    """The output of the recipe's last training stage (`finetune/`, `instruct/` or `align/`), or `None` when it
    trains nothing."""
    return ctx.layout.final_model_dir(ctx.recipe.stages)


def run(ctx: StageContext) -> None:
    """Score the trained (the stage-2-only, the untrained) model on every benchmark of `evaluate.benchmarks`."""
    recipe, config = ctx.recipe, ctx.recipe.evaluate
    tracker = stage_tracker(recipe.tracking, ctx.layout.root, "evaluate")  # a missing backend fails before, not after
    dtype = resolve_dtype(recipe.model.dtype)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    attn = recipe.model.attn_implementation

    def on_device(load: Loader) -> Loader:
        def loaded():
            model, processor = load()
            return model.to(device=device, dtype=dtype), processor

        return loaded

    trained_dir = trained_model_dir(ctx)
    models: dict[str, Loader] = {}  # by role, in scoring order; the first is the main model
    if trained_dir is not None:
        models["trained"] = on_device(lambda: load_trained(trained_dir, dtype, attn, ctx.layout.root))
        ablation = without_align_model(ctx.layout, trained_dir.name) if trained_dir != ctx.layout.align_dir else None
        if ablation is not None:
            models["without_align"] = on_device(lambda: load_trained(ablation, dtype, attn, ctx.layout.root))
    if trained_dir is None or config.baseline:
        models["baseline"] = on_device(lambda: load_model(start_model(ctx), recipe.seed))
    tasks = benchmark_tasks(config, ctx.domain, ctx.layout.eval_dir)
    settings = EvalSettings.from_config(
        config, ctx.domain.name, Path(recipe.data.root), ctx.layout.cache_dir, recipe.seed
    )
    result = evaluate_benchmarks(tasks, models, trained_dir.name if trained_dir else "untrained", settings)
    ctx.keep(result.kept)
    for reason, n in result.skipped.items():
        ctx.skip(reason, n)
    if result.judge:
        ctx.record("judge", result.judge)
    if result.ensemble:
        ctx.record("ensemble", result.ensemble)
    summary = {name: {k: v for k, v in m.items() if k in ROLES} for name, m in result.metrics.items()}
    ctx.record("metrics", summary)
    log_evaluation(tracker, evaluation_logs(summary))
