"""Stage `evaluate`: answer each benchmark's questions with the trained model (and the untrained one).

The trained model is the last training stage's output: `finetune/` or `instruct/` (an adapter is merged into its
base), or `align/`. With `evaluate.baseline`, the model as assembled before any training is scored too, so that
`eval/<benchmark>/metrics.json` shows before and after side by side. When `instruct` also trained stage 2 without
`align` (`instruct.compare_without_align`, LLaVA's "no stage 1" ablation), that model is scored too (after
`finetune`, its fine-tuned copy `finetune/without_align/`, so that both went through the same training). Per benchmark
it writes:

- `predictions.jsonl`: one row per question (id, question, reference, prediction, and `correct` for closed ones);
- `baseline_predictions.jsonl`: the same for the untrained model;
- `without_align_predictions.jsonl`: the same for the stage-2-only model, when there is one;
- `metrics.json`: `{"benchmark", "model", "num_items", "metrics": {...}, "baseline": {...}, "without_align": {...}}`,
  metrics from the benchmark's own metric function, and `notes` (the benchmark's caveats about its question set,
  e.g. answer types guessed by a rule) when it has any, and what each metric means: `metric_specs` (the benchmark's
  declarations of the names reported: score, baseline, count or diagnostic) and `primary_metric`
  (`llava_adapt.evaluate.metric_spec`), so that the card, the report and `llava-adapt eval` need no plugin.

With `tracking.report_to`, the metrics of every model scored also go to the run's tracker, under
`eval/<benchmark>/<model>/<metric>` (`llava_adapt.train.tracking`).

With `evaluate.ensemble` (and `evaluate.judge` as the client), a benchmark that offers that ensemble combines the
trained model's answers with the judge model's (LLaVA's ScienceQA + GPT-4 ensembles): `ensemble.jsonl` holds each
final answer, `metrics.json` its scores under `ensemble` (the same metrics, next to the model's own) and what was
asked under `ensemble_info`.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel, ProcessorMixin

from llava_adapt.data.jsonl import write_jsonl
from llava_adapt.data.records import Skip, VQAItem
from llava_adapt.domain import Benchmark, SourceContext
from llava_adapt.errors import LlavaAdaptError
from llava_adapt.evaluate.ensemble import EnsembleResult, run_ensemble
from llava_adapt.evaluate.generation import format_question, generate_answers
from llava_adapt.evaluate.judge import check_judge, judge_benchmark
from llava_adapt.evaluate.metric_spec import benchmark_specs, specs_record
from llava_adapt.evaluate.metrics import is_correct
from llava_adapt.model.load import load_model, load_trained, resolve_dtype
from llava_adapt.recipe.schema import EvaluateConfig
from llava_adapt.run.atomic import write_json
from llava_adapt.stages.context import StageContext
from llava_adapt.stages.instruct import without_align_model
from llava_adapt.stages.model_source import start_model
from llava_adapt.stages.prepare import resolve_image
from llava_adapt.train.tracking import evaluation_logs, log_evaluation, stage_tracker

Loader = Callable[[], tuple[PreTrainedModel, ProcessorMixin]]
# The predictions file of each model scored (by role; the role is also its metrics.json key, but for `trained`).
PREDICTIONS = {"trained": "predictions.jsonl", "without_align": "without_align_predictions.jsonl",
               "baseline": "baseline_predictions.jsonl"}  # fmt: skip
ENSEMBLE_FILE = "ensemble.jsonl"
JUDGEMENTS = {"trained": "judgements.jsonl", "without_align": "without_align_judgements.jsonl",
              "baseline": "baseline_judgements.jsonl"}  # fmt: skip
NOT_JUDGED = "not run: set evaluate.judge (a GPT-4-class model) to score this benchmark's free-form answers"


class EvaluateError(LlavaAdaptError, RuntimeError):
    """A benchmark cannot be evaluated."""


def load_items(
    ctx: StageContext,
    name: str,
    bench: Benchmark,
    args: dict[str, Any] | None = None,
    output_dir: Path | None = None,
) -> tuple[list[VQAItem], list[Path]]:
    """Load a benchmark's items and resolve their images; unusable items are skipped and counted.

    Args:
        ctx (`StageContext`): the stage's context (recipe, counts).
        name (`str`): the benchmark's name (it prefixes skip reasons).
        bench (`Benchmark`): the benchmark.
        args (`dict[str, Any]`, *optional*): its loader arguments; defaults to `evaluate.args.<name>`.
        output_dir (`Path`, *optional*): where its loader may write images; defaults to `eval/<name>/images`.

    Returns:
        The usable items and the absolute path of each one's image.

    Raises:
        EvaluateError: no item is usable.
    """
    args = bench.args.model_validate(ctx.recipe.evaluate.args.get(name, {}) if args is None else args)
    output_dir = output_dir or ctx.layout.benchmark_dir(name) / "images"
    output_dir.mkdir(parents=True, exist_ok=True)
    data_root = Path(ctx.recipe.data.root).expanduser()
    source_ctx = SourceContext(data_root=data_root, output_dir=output_dir, seed=ctx.recipe.seed)
    items, paths = [], []
    for item in bench.load(args, source_ctx):
        if isinstance(item, Skip):
            ctx.skip(f"{name}: {item.reason}")
            continue
        stored, reason = resolve_image(item.image, output_dir, data_root)
        if reason is not None:
            ctx.skip(f"{name}: {reason}")
            continue
        items.append(item)
        paths.append(output_dir / stored if not Path(stored).is_absolute() else Path(stored))
    if not items:
        raise EvaluateError(f"benchmark {name!r} of domain {ctx.domain.name!r} has no usable items")
    ctx.keep(len(items))
    return items, paths


def answer_length(config: EvaluateConfig, name: str, bench: Benchmark) -> int:
    """`max_new_tokens` for benchmark `name`: the recipe's per-benchmark value, else the benchmark's own (long for
    free-form chat), else `evaluate.max_new_tokens`."""
    return config.max_new_tokens_by_benchmark.get(name) or bench.max_new_tokens or config.max_new_tokens


def trained_model_dir(ctx: StageContext) -> Path | None:
    """The output of the recipe's last training stage (`finetune/`, `instruct/` or `align/`), or `None` when it
    trains nothing."""
    return ctx.layout.final_model_dir(ctx.recipe.stages)


def prediction_rows(
    items: list[VQAItem],
    predictions: list[str],
    paths: list[Path],
    base: Path,
    correct: Callable[[VQAItem, str], bool] | None = None,
) -> list[dict]:
    """The rows of `predictions.jsonl`: question, reference, prediction, and the image (relative to `base` when
    inside it, else absolute).

    Args:
        items (`list[VQAItem]`): the questions.
        predictions (`list[str]`): the model's answers, in the same order.
        paths (`list[Path]`): the images, in the same order.
        base (`Path`): the benchmark's output folder.
        correct (`Callable[[VQAItem, str], bool]`, *optional*): the benchmark's own rule for the `correct` column of
            closed questions (`Benchmark.correct`); defaults to the generic `is_correct`.
    """
    rows = []
    for item, prediction, path in zip(items, predictions, paths, strict=True):
        image = path.relative_to(base).as_posix() if path.is_relative_to(base) else str(path)
        row = {"id": item.id, "image": image, "question": item.question, "answer": item.answer,
               "prediction": prediction, "answer_type": item.answer_type}  # fmt: skip
        if item.answer_type == "closed":
            row["correct"] = (correct or is_correct)(item, prediction)
        rows.append(row)
    return rows


def run(ctx: StageContext) -> None:
    """Score the trained (the stage-2-only, the untrained) model on every benchmark of `evaluate.benchmarks`."""
    recipe, config = ctx.recipe, ctx.recipe.evaluate
    tracker = stage_tracker(recipe.tracking, ctx.layout.root, "evaluate")  # a missing backend fails before, not after
    dtype = resolve_dtype(recipe.model.dtype)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    benchmarks = {name: ctx.domain.benchmarks[name] for name in config.benchmarks}
    data = {name: load_items(ctx, name, bench) for name, bench in benchmarks.items()}
    trained_dir = trained_model_dir(ctx)
    models: dict[str, Loader] = {}  # by role, in scoring order
    if trained_dir is not None:
        models["trained"] = lambda: load_trained(trained_dir, dtype, recipe.model.attn_implementation)
        ablation = without_align_model(ctx.layout, trained_dir.name) if trained_dir != ctx.layout.align_dir else None
        if ablation is not None:
            models["without_align"] = lambda: load_trained(ablation, dtype, recipe.model.attn_implementation)
    if trained_dir is None or config.baseline:
        models["baseline"] = lambda: load_model(start_model(ctx), recipe.seed)
    if config.judge is not None and (config.ensemble or any(bench.judge for bench in benchmarks.values())):
        check_judge(config.judge)  # before hours of generation, not after
    results: dict[str, dict[str, dict]] = {name: {} for name in benchmarks}
    answers: dict[str, dict[str, list[str]]] = {name: {} for name in benchmarks}
    for role, loader in models.items():
        model, processor = loader()
        model.to(device=device, dtype=dtype)
        for name, bench in benchmarks.items():
            items, paths = data[name]
            ctx.log.info("evaluate: %s model on %s (%d questions)", role, name, len(items))
            predictions = generate_answers(
                model, processor, items, paths, bench.prompt, config.batch_size,
                answer_length(config, name, bench), config.temperature,
            )  # fmt: skip
            file = PREDICTIONS["trained"] if trained_dir is None else PREDICTIONS[role]
            out = ctx.layout.benchmark_dir(name)
            write_jsonl(out / file, prediction_rows(items, predictions, paths, out, bench.correct))
            results[name][role] = bench.metrics(items, predictions)
            answers[name][role] = predictions
        del model
        gc.collect()
    judged = _judge(ctx, benchmarks, data, answers, results, file_role=None if trained_dir else "trained")
    ensembles = _ensembles(ctx, benchmarks, data, answers)
    summary = {}
    for name in benchmarks:
        scores = results[name]
        metrics = {
            "benchmark": name,
            "model": str(trained_dir.name) if trained_dir else "untrained",
            "num_items": len(data[name][0]),
            "prompt_example": format_question(data[name][0][0], benchmarks[name].prompt),
            "metrics": scores.get("trained", scores.get("baseline")),
        }
        if trained_dir is not None:
            metrics.update({role: scores[role] for role in ("baseline", "without_align") if role in scores})
        if name in judged:
            metrics["judge"] = judged[name]
        if name in ensembles:
            metrics["ensemble"], metrics["ensemble_info"] = ensembles[name].scores, ensembles[name].facts
        notes = benchmarks[name].notes(data[name][0]) if benchmarks[name].notes else []
        if notes:
            metrics["notes"] = notes
        roles = [metrics.get(key) for key in ("metrics", "baseline", "without_align", "ensemble")]
        metrics.update(specs_record(benchmark_specs(benchmarks[name]), *roles))  # what each metric means
        write_json(ctx.layout.benchmark_dir(name) / "metrics.json", metrics)
        summary[name] = {k: v for k, v in metrics.items() if k in ("metrics", "baseline", "without_align", "ensemble")}
    ctx.record("metrics", summary)
    log_evaluation(tracker, evaluation_logs(summary))


def _ensembles(
    ctx: StageContext,
    benchmarks: dict[str, Benchmark],
    data: dict[str, tuple[list[VQAItem], list[Path]]],
    answers: dict[str, dict[str, list[str]]],
) -> dict[str, EnsembleResult]:
    """Run `evaluate.ensemble` on the main model's answers of every benchmark that offers it and write its answers
    to `ensemble.jsonl`; return the results by benchmark."""
    config = ctx.recipe.evaluate
    out: dict[str, EnsembleResult] = {}
    if config.ensemble is None or config.judge is None:
        return out
    for name, bench in benchmarks.items():
        if bench.ensemble is None or config.ensemble not in bench.ensemble.kinds:
            continue
        role = "trained" if "trained" in answers[name] else "baseline"
        ctx.log.info("evaluate: %s ensemble of the %s model with %s on %s", config.ensemble, role,
                     config.judge.model, name)  # fmt: skip
        result = run_ensemble(bench, config.ensemble, data[name][0], answers[name][role], config.judge,
                              ctx.layout.cache_dir)  # fmt: skip
        write_jsonl(ctx.layout.benchmark_dir(name) / ENSEMBLE_FILE, result.rows)
        out[name] = result
    if out:
        ctx.record("ensemble", {name: result.facts for name, result in out.items()})
    return out


def _judge(
    ctx: StageContext,
    benchmarks: dict[str, Benchmark],
    data: dict[str, tuple[list[VQAItem], list[Path]]],
    answers: dict[str, dict[str, list[str]]],
    results: dict[str, dict[str, dict]],
    file_role: str | None,
) -> dict[str, dict]:
    """Have the judge score the answers of every benchmark that has one; its metrics join each role's metrics.

    Returns, per judged benchmark, what `metrics.json` records under `judge`: the judge model and settings, or
    why it did not run. `file_role` names the files after one role whatever the role (an untrained-only run).
    """
    config = ctx.recipe.evaluate.judge
    out: dict[str, dict] = {}
    facts: dict[str, dict] = {}
    for name, bench in benchmarks.items():
        if bench.judge is None:
            continue
        if config is None:
            ctx.log.warning("evaluate: %s has a judged score; %s", name, NOT_JUDGED)
            out[name] = {"status": NOT_JUDGED}
            continue
        items = data[name][0]
        roles = [role for role in answers[name] if config.models is None or role in config.models]
        for role in roles:
            ctx.log.info("evaluate: judging the %s model's answers on %s with %s", role, name, config.model)
            file = ctx.layout.benchmark_dir(name) / JUDGEMENTS[file_role or role]
            scores, facts[f"{name}/{role}"] = judge_benchmark(
                bench.judge, items, answers[name][role], config, ctx.layout.cache_dir, file
            )
            results[name][role] = {**results[name][role], **scores}
        out[name] = {"status": "scored", "model": config.model, "temperature": config.temperature,
                     "models": roles, "description": bench.judge.description}  # fmt: skip
    if facts:
        ctx.record("judge", facts)
    return out
