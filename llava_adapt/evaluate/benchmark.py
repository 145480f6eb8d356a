"""Evaluate models on a domain's benchmarks: the one computation behind the evaluate stage and `llava-adapt eval`.

`evaluate_benchmarks` takes plain arguments (the benchmarks as `BenchmarkTask`s, the models as loaders, the settings
as `EvalSettings`); the evaluate stage turns the recipe into them (`benchmark_tasks`, `EvalSettings.from_config`),
and so does `llava-adapt eval RUN_DIR` from the run's `recipe.yaml`: the same items, prompts, answer lengths, batch
size and judge, so the same numbers. For each benchmark it loads the items (unusable ones skipped with a counted
reason), answers them with each model, scores the answers with the benchmark's metric function (and the judge, the
ensemble when configured), and writes into the benchmark's folder:

- `predictions.jsonl`: the first model's answers, one row per question (id, question, reference, prediction,
  `correct` for closed ones, and the image path); `<role>_predictions.jsonl` for each other model (`baseline`,
  `without_align`);
- `metrics.json`: `{"benchmark", "domain", "model", "num_items", "prompt_example", "metrics": {...}, "<role>": {...}
  for each other model, "args", "skipped"}`, and when they apply `judge` (the judge model and settings, or why it
  did not run), `ensemble` / `ensemble_info`, `notes` (the benchmark's caveats about its question set, e.g. answer
  types guessed by a rule) and what each metric means (`metric_specs`, `primary_metric`,
  `llava_adapt.evaluate.metric_spec`);
- `images/`: images the benchmark's loader converted or synthesised (if any);
- with a judge: `judgements.jsonl` (`<role>_judgements.jsonl`), the judge's reply per question; with an ensemble:
  `ensemble.jsonl`, each final answer. Replies are cached in `EvalSettings.cache_dir`, so a rerun pays nothing twice.
"""

from __future__ import annotations

import gc
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from transformers import PreTrainedModel, ProcessorMixin

from llava_adapt.data.jsonl import write_jsonl
from llava_adapt.data.paths import resolve_image
from llava_adapt.data.records import Skip, VQAItem
from llava_adapt.domain import Benchmark, Domain, SourceContext
from llava_adapt.errors import InputError, LlavaAdaptError
from llava_adapt.evaluate.config import JudgeConfig
from llava_adapt.evaluate.ensemble import EnsembleResult, run_ensemble
from llava_adapt.evaluate.generation import format_question, generate_answers
from llava_adapt.evaluate.judge import check_judge, judge_benchmark
from llava_adapt.evaluate.metric_spec import benchmark_specs, specs_record
from llava_adapt.evaluate.metrics import is_correct
from llava_adapt.recipe.schema import EvaluateConfig
from llava_adapt.run.atomic import write_json
from llava_adapt.suggest import did_you_mean

log = logging.getLogger("llava_adapt")

Loader = Callable[[], tuple[PreTrainedModel, ProcessorMixin]]
ENSEMBLE_FILE = "ensemble.jsonl"
NOT_JUDGED = (
    "not run: set evaluate.judge (or pass --judge MODEL to llava-adapt eval) to have a GPT-4-class model score this "
    "benchmark's free-form answers"
)
ROLES = ("metrics", "baseline", "without_align", "ensemble")  # metrics.json keys that hold one model's scores


class BenchmarkArgsError(InputError, ValueError):
    """The benchmark name or its arguments are not valid for the domain."""


class EvaluateError(LlavaAdaptError, RuntimeError):
    """A benchmark cannot be evaluated."""


def predictions_file(role: str, main: bool) -> str:
    """`predictions.jsonl` for the first model scored, `<role>_predictions.jsonl` for the others."""
    return "predictions.jsonl" if main else f"{role}_predictions.jsonl"


def judgements_file(role: str, main: bool) -> str:
    """`judgements.jsonl` for the first model scored, `<role>_judgements.jsonl` for the others."""
    return "judgements.jsonl" if main else f"{role}_judgements.jsonl"


def pick_benchmark(domain: Domain, name: str | None) -> tuple[str, Benchmark]:
    """The benchmark `name` of `domain`; without a name, the domain's only benchmark.

    Raises:
        BenchmarkArgsError: unknown name (with a did-you-mean), or no name and not exactly one benchmark.
    """
    available = ", ".join(sorted(domain.benchmarks)) or "none"
    if name is None:
        if len(domain.benchmarks) != 1:
            raise BenchmarkArgsError(f"domain {domain.name!r} has several benchmarks; pick one with --benchmark: "
                                     f"{available}")  # fmt: skip
        name = next(iter(domain.benchmarks))
    if name not in domain.benchmarks:
        raise BenchmarkArgsError(
            f"domain {domain.name!r} has no benchmark {name!r}.{did_you_mean(name, domain.benchmarks)} "
            f"Benchmarks: {available}"
        )
    return name, domain.benchmarks[name]


def benchmark_args(
    bench: Benchmark,
    name: str,
    base: dict[str, Any],
    overrides: dict[str, Any] | None = None,
    split: str | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Merge a benchmark's arguments (the recipe's, then `overrides`, then `split` / `limit`) and validate them.

    `split` and `limit` go into the arguments when the benchmark takes them (`split`, `limit` fields).

    Raises:
        BenchmarkArgsError: an argument is unknown or of the wrong type, or `split` is given to a benchmark without
            splits.
    """
    args = {**base, **(overrides or {})}
    fields = bench.args.model_fields
    if split is not None:
        if "split" not in fields:
            raise BenchmarkArgsError(
                f"benchmark {name!r} has no splits (its arguments: {', '.join(fields) or 'none'})"
            )
        args["split"] = split
    if limit is not None and "limit" in fields:
        args["limit"] = limit
    try:
        bench.args.model_validate(args)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'args'}: {e['msg']}" for e in exc.errors())
        raise BenchmarkArgsError(
            f"invalid arguments for benchmark {name!r}: {problems} (valid: {', '.join(fields) or 'none'})"
        ) from None
    return args


def answer_length(config: EvaluateConfig, name: str, bench: Benchmark) -> int:
    """`max_new_tokens` for benchmark `name`: the recipe's per-benchmark value, else the benchmark's own (long for
    free-form chat), else `evaluate.max_new_tokens`."""
    return config.max_new_tokens_by_benchmark.get(name) or bench.max_new_tokens or config.max_new_tokens


@dataclass
class BenchmarkItems:
    """A benchmark's usable items, the absolute path of each one's image, and what was skipped (by reason, prefixed
    with the benchmark's name)."""

    items: list[VQAItem]
    paths: list[Path]
    skipped: Counter = field(default_factory=Counter)


def load_benchmark(
    name: str, bench: Benchmark, args: dict[str, Any], data_root: Path, output_dir: Path, seed: int = 0
) -> BenchmarkItems:
    """Load a benchmark's items and resolve their images; unusable items are skipped and counted.

    Args:
        name (`str`): the benchmark's name (it prefixes skip reasons).
        bench (`Benchmark`): the benchmark.
        args (`dict[str, Any]`): its loader arguments (validated here).
        data_root (`Path`): the folder its files are read from.
        output_dir (`Path`): where its loader may write images (created).
        seed (`int`, defaults to `0`): seed for benchmarks that synthesise or sample their items.

    Raises:
        EvaluateError: no item is usable.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    data_root = Path(data_root).expanduser()
    source_ctx = SourceContext(data_root=data_root, output_dir=output_dir, seed=seed)
    loaded = BenchmarkItems([], [])
    for item in bench.load(bench.args.model_validate(args), source_ctx):
        if isinstance(item, Skip):
            loaded.skipped[f"{name}: {item.reason}"] += 1
            continue
        stored, reason = resolve_image(item.image, output_dir, data_root)
        if reason is not None:
            loaded.skipped[f"{name}: {reason}"] += 1
            continue
        loaded.items.append(item)
        loaded.paths.append(output_dir / stored if not Path(stored).is_absolute() else Path(stored))
    if not loaded.items:
        raise EvaluateError(f"benchmark {name!r} has no usable items (skipped: {dict(loaded.skipped) or 'none'})")
    return loaded


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


@dataclass(frozen=True)
class BenchmarkTask:
    """One benchmark to evaluate.

    Args:
        name (`str`): its name in the domain.
        bench (`Benchmark`): the benchmark.
        args (`dict[str, Any]`): its loader arguments (`benchmark_args`).
        out (`Path`): the folder its files are written to.
        max_new_tokens (`int`): answer length limit (`answer_length`).
        limit (`int`, *optional*): answer only the first `limit` questions.
    """

    name: str
    bench: Benchmark
    args: dict[str, Any]
    out: Path
    max_new_tokens: int
    limit: int | None = None


def benchmark_tasks(
    config: EvaluateConfig,
    domain: Domain,
    out_dir: Path,
    names: Sequence[str | None] | None = None,
    overrides: dict[str, Any] | None = None,
    split: str | None = None,
    limit: int | None = None,
    max_new_tokens: int | None = None,
) -> list[BenchmarkTask]:
    """The benchmarks a recipe's `evaluate` section describes, each written to `out_dir/<benchmark>/`.

    Args:
        config (`EvaluateConfig`): the recipe's `evaluate` section (arguments and answer lengths by benchmark).
        domain (`Domain`): the recipe's domain.
        out_dir (`Path`): the folder of the benchmark folders (the run's `eval/`).
        names (`Sequence[str | None]`, *optional*): these benchmarks of the domain (`None`: the domain's only one,
            `pick_benchmark`); defaults to `config.benchmarks`.
        overrides (`dict[str, Any]`, *optional*): arguments on top of the recipe's (`llava-adapt eval --arg`).
        split (`str`, *optional*): the split, for benchmarks that have them.
        limit (`int`, *optional*): answer only the first `limit` questions.
        max_new_tokens (`int`, *optional*): answer length limit instead of `answer_length`'s.

    Raises:
        BenchmarkArgsError: a name is not one of the domain's benchmarks, or the arguments do not validate.
    """
    tasks = []
    for name in names if names is not None else config.benchmarks:
        name, bench = pick_benchmark(domain, name)
        args = benchmark_args(bench, name, config.args.get(name, {}), overrides, split, limit)
        length = max_new_tokens or answer_length(config, name, bench)
        tasks.append(BenchmarkTask(name, bench, args, out_dir / name, length, limit))
    return tasks


@dataclass(frozen=True)
class EvalSettings:
    """How to answer and score, for every benchmark and model.

    Args:
        domain (`str`): the domain's name (recorded in `metrics.json`).
        data_root (`Path`): the folder the benchmarks' files are read from.
        cache_dir (`Path`): where the judge's and the ensemble's replies are cached.
        seed (`int`, defaults to `0`): seed for benchmarks that synthesise or sample their items.
        batch_size (`int`, defaults to `16`): questions per `generate` call.
        temperature (`float`, defaults to `0.0`): 0 decodes greedily (reproducible), else samples.
        judge (`JudgeConfig`, *optional*): the judge model, for benchmarks with a judged score (and the ensemble's
            client).
        ensemble (`str`, *optional*): the ensemble to run on benchmarks that offer it (`complement`, `requery`).
    """

    domain: str
    data_root: Path
    cache_dir: Path
    seed: int = 0
    batch_size: int = 16
    temperature: float = 0.0
    judge: JudgeConfig | None = None
    ensemble: str | None = None

    @classmethod
    def from_config(
        cls, config: EvaluateConfig, domain: str, data_root: Path, cache_dir: Path, seed: int, **overrides: Any
    ) -> EvalSettings:
        """The settings of a recipe's `evaluate` section (`overrides`, e.g. `batch_size`, replace its values)."""
        settings = {"batch_size": config.batch_size, "temperature": config.temperature, "judge": config.judge,
                    "ensemble": config.ensemble}  # fmt: skip
        settings.update(overrides)
        return cls(domain=domain, data_root=Path(data_root).expanduser(), cache_dir=cache_dir, seed=seed, **settings)


@dataclass
class EvaluationResult:
    """What `evaluate_benchmarks` found, for the caller to record.

    Args:
        metrics (`dict[str, dict]`): the content of each benchmark's `metrics.json`, by benchmark.
        kept (`int`): questions answered, all benchmarks together.
        skipped (`Counter`): questions skipped, by `<benchmark>: <reason>`.
        judge (`dict[str, dict]`): the judge's facts (requests, cost, failures) by `<benchmark>/<role>`.
        ensemble (`dict[str, dict]`): the ensemble's facts by benchmark.
    """

    metrics: dict[str, dict] = field(default_factory=dict)
    kept: int = 0
    skipped: Counter = field(default_factory=Counter)
    judge: dict[str, dict] = field(default_factory=dict)
    ensemble: dict[str, dict] = field(default_factory=dict)


def evaluate_benchmarks(
    tasks: Sequence[BenchmarkTask], models: dict[str, Loader], model_name: str, settings: EvalSettings
) -> EvaluationResult:
    """Answer every benchmark with every model, score the answers and write each benchmark's files (module docstring).

    All items are loaded, and the judge checked, before the first model loads; each model is loaded once and
    answers every benchmark.

    Args:
        tasks (`Sequence[BenchmarkTask]`): the benchmarks.
        models (`dict[str, Loader]`): by role (`trained`, `without_align`, `baseline`), in scoring order, a function
            that returns the model (on its device, in its dtype) and processor. The first is the main model: its
            scores are `metrics.json`'s `metrics`, its answers go to `predictions.jsonl` and to the ensemble.
        model_name (`str`): what `metrics.json` calls the main model (`instruct`, a folder, a Hub id).
        settings (`EvalSettings`): data root, decoding, judge and ensemble.

    Raises:
        EvaluateError: a benchmark has no usable item.
        JudgeError: the judge cannot be asked (no key, bad key, unknown model).
    """
    result = EvaluationResult()
    data: dict[str, BenchmarkItems] = {}
    for task in tasks:
        loaded = load_benchmark(task.name, task.bench, task.args, settings.data_root, task.out / "images",
                                settings.seed)  # fmt: skip
        if task.limit is not None:
            loaded.items, loaded.paths = loaded.items[: task.limit], loaded.paths[: task.limit]
        data[task.name] = loaded
        result.kept += len(loaded.items)
        result.skipped.update(loaded.skipped)
    judge = settings.judge
    if judge is not None and (settings.ensemble or any(task.bench.judge for task in tasks)):
        check_judge(judge)  # before hours of generation, not after
    main = next(iter(models))
    scores: dict[str, dict[str, dict]] = {task.name: {} for task in tasks}
    answers: dict[str, dict[str, list[str]]] = {task.name: {} for task in tasks}
    for role, loader in models.items():
        model, processor = loader()
        for task in tasks:
            items, paths = data[task.name].items, data[task.name].paths
            log.info("evaluate: %s model on %s (%d questions)", role, task.name, len(items))
            predictions = generate_answers(model, processor, items, paths, task.bench.prompt, settings.batch_size,
                                           task.max_new_tokens, settings.temperature)  # fmt: skip
            rows = prediction_rows(items, predictions, paths, task.out, task.bench.correct)
            write_jsonl(task.out / predictions_file(role, role == main), rows)
            scores[task.name][role] = task.bench.metrics(items, predictions)
            answers[task.name][role] = predictions
        del model, processor
        gc.collect()
    for task in tasks:
        items = data[task.name].items
        metrics: dict[str, Any] = {
            "benchmark": task.name,
            "domain": settings.domain,
            "model": model_name,
            "num_items": len(items),
            "prompt_example": format_question(items[0], task.bench.prompt),
        }
        judged = None
        if task.bench.judge is not None:
            judged = _judge(task, items, answers[task.name], scores[task.name], main, settings, result)
        metrics["metrics"] = scores[task.name][main]
        metrics.update({role: scores[task.name][role] for role in models if role != main})
        if judged is not None:
            metrics["judge"] = judged
        ensemble = _ensemble(task, items, answers[task.name][main], settings)
        if ensemble is not None:
            metrics["ensemble"], metrics["ensemble_info"] = ensemble.scores, ensemble.facts
            result.ensemble[task.name] = ensemble.facts
        notes = task.bench.notes(items) if task.bench.notes else []
        if notes:  # caveats about the question set, e.g. answer types guessed by a rule
            metrics["notes"] = notes
        metrics.update(specs_record(benchmark_specs(task.bench), *(metrics.get(key) for key in ROLES)))
        metrics["args"] = task.args
        metrics["skipped"] = dict(data[task.name].skipped)
        write_json(task.out / "metrics.json", metrics)
        result.metrics[task.name] = metrics
    return result


def _judge(
    task: BenchmarkTask,
    items: list[VQAItem],
    answers: dict[str, list[str]],
    scores: dict[str, dict],
    main: str,
    settings: EvalSettings,
    result: EvaluationResult,
) -> dict[str, Any]:
    """Have the judge score each model's answers on a benchmark with a judged score; its metrics join each role's.

    Returns what `metrics.json` records under `judge`: the judge model and settings and what judging the main
    model's answers took (requests, cost), or why it did not run.
    """
    config = settings.judge
    if config is None:
        log.warning("evaluate: %s has a judged score; %s", task.name, NOT_JUDGED)
        return {"status": NOT_JUDGED}
    roles = [role for role in answers if config.models is None or role in config.models]
    for role in roles:
        log.info("evaluate: judging the %s model's answers on %s with %s", role, task.name, config.model)
        file = task.out / judgements_file(role, role == main)
        judged, result.judge[f"{task.name}/{role}"] = judge_benchmark(
            task.bench.judge, items, answers[role], config, settings.cache_dir, file
        )
        scores[role] = {**scores[role], **judged}
    return {"status": "scored", "model": config.model, "temperature": config.temperature, "models": roles,
            "description": task.bench.judge.description, **result.judge.get(f"{task.name}/{main}", {})}  # fmt: skip


def _ensemble(
    task: BenchmarkTask, items: list[VQAItem], answers: list[str], settings: EvalSettings
) -> EnsembleResult | None:
    """Run the configured ensemble on the main model's answers when the benchmark offers it, writing its answers to
    `ensemble.jsonl`; `None` when it does not apply."""
    kind, judge = settings.ensemble, settings.judge
    offered = task.bench.ensemble is not None and kind in task.bench.ensemble.kinds
    if kind is None or judge is None or not offered:
        return None
    log.info("evaluate: %s ensemble with %s on %s", kind, judge.model, task.name)
    ensemble = run_ensemble(task.bench, kind, items, answers, judge, settings.cache_dir)
    write_jsonl(task.out / ENSEMBLE_FILE, ensemble.rows)
    return ensemble
