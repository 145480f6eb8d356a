"""Evaluate any model on one benchmark of a domain, outside a recipe run (`llava-adapt eval`).

The items are loaded, the questions answered and the results written by the evaluate stage's own code
(`llava_adapt.stages.evaluate.load_items`, `llava_adapt.evaluate.generation.generate_answers`), so a score from
`llava-adapt eval` and one from `recipe run` are the same computation. The output folder gets:

- `predictions.jsonl`: one row per question (id, question, reference, prediction, `correct` for closed ones, and
  the image path);
- `metrics.json`: `{"benchmark", "domain", "model", "num_items", "prompt_example", "metrics", "args", "skipped"}`
  (and `notes`, the benchmark's caveats about its question set, when it has any),
  readable by `llava-adapt publish` and the run report like the stage's;
- `images/`: images the benchmark's loader converted or synthesised (if any);
- with a judge (`judge=`, for benchmarks that have one): `judgements.jsonl` (the judge's reply per question), the
  judge's metrics in `metrics.json`, and `cache/` (its replies, so a rerun pays for nothing twice).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from llava_adapt.data.jsonl import write_jsonl
from llava_adapt.domain import Benchmark, Domain
from llava_adapt.errors import InputError
from llava_adapt.evaluate.config import JudgeConfig
from llava_adapt.evaluate.generation import format_question, generate_answers
from llava_adapt.evaluate.judge import check_judge, judge_benchmark
from llava_adapt.evaluate.metric_spec import benchmark_specs, specs_record
from llava_adapt.evaluate.resolve import ResolvedModel
from llava_adapt.recipe.schema import Recipe
from llava_adapt.run.atomic import write_json
from llava_adapt.run.layout import RunLayout
from llava_adapt.stages.context import StageContext
from llava_adapt.stages.evaluate import NOT_JUDGED, load_items, prediction_rows
from llava_adapt.suggest import did_you_mean

log = logging.getLogger("llava_adapt")


class BenchmarkArgsError(InputError, ValueError):
    """The benchmark name or its arguments are not valid for the domain."""


@dataclass(frozen=True)
class _OutputLayout(RunLayout):
    """A run layout whose benchmark folder is the user's `--out` folder."""

    out: Path = field(default=Path("."))

    def benchmark_dir(self, benchmark: str) -> Path:
        return self.out


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
    bench: Benchmark, name: str, base: dict[str, Any], overrides: dict[str, Any], split: str | None, limit: int | None
) -> dict[str, Any]:
    """Merge a benchmark's arguments (recipe's, then `--arg`s, then `--split` / `--limit`) and validate them.

    `--split` and `--limit` go into the arguments when the benchmark takes them (`split`, `limit` fields).

    Raises:
        BenchmarkArgsError: an argument is unknown or of the wrong type, or `--split` is given to a benchmark
            without splits.
    """
    args = {**base, **overrides}
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


def evaluate_benchmark(
    resolved: ResolvedModel,
    domain: Domain,
    benchmark: str,
    out: Path,
    args: dict[str, Any],
    data_root: Path,
    limit: int | None = None,
    batch_size: int = 16,
    max_new_tokens: int | None = None,
    seed: int = 0,
    judge: JudgeConfig | None = None,
) -> dict[str, Any]:
    """Answer one benchmark's questions with `resolved` and write `predictions.jsonl` and `metrics.json` to `out`.

    Args:
        resolved (`ResolvedModel`): the model and processor (`resolve_model`).
        domain (`Domain`): the domain plugin that owns the benchmark.
        benchmark (`str`): the benchmark's name in `domain.benchmarks`.
        out (`Path`): the output folder (created).
        args (`dict[str, Any]`): the benchmark's arguments (`benchmark_args`).
        data_root (`Path`): the folder the benchmark's files are read from.
        limit (`int`, *optional*): answer only the first `limit` questions.
        batch_size (`int`, defaults to `16`): questions per `generate` call.
        max_new_tokens (`int`, *optional*): answer length limit; default: the benchmark's own, else 64.
        seed (`int`, defaults to `0`): seed for benchmarks that synthesise or sample their items.
        judge (`JudgeConfig`, *optional*): the judge model, for a benchmark that has a judged score.

    Raises:
        BenchmarkArgsError: `judge` is given for a benchmark without a judge.
        JudgeError: the judge cannot be asked (no key, bad key, unknown model).

    Returns:
        The content of `metrics.json`.
    """
    bench = domain.benchmarks[benchmark]
    if judge is not None:
        if bench.judge is None:
            raise BenchmarkArgsError(f"benchmark {benchmark!r} has no judged score; drop the judge options")
        check_judge(judge)
    recipe = Recipe.model_validate(
        {
            "domain": domain.name,
            "seed": seed,
            "stages": ["evaluate"],
            "data": {"source": next(iter(domain.sources)), "root": str(data_root)},
            "evaluate": {"benchmarks": [benchmark], "args": {benchmark: args}},
        }
    )
    out.mkdir(parents=True, exist_ok=True)
    layout = _OutputLayout(root=out, out=out)
    ctx = StageContext(name="evaluate", recipe=recipe, domain=domain, layout=layout)
    items, paths = load_items(ctx, benchmark, bench)
    if limit is not None:
        items, paths = items[:limit], paths[:limit]
    log.info("eval: %s on %s/%s (%d questions)", resolved.name, domain.name, benchmark, len(items))
    predictions = generate_answers(
        resolved.model, resolved.processor, items, paths, bench.prompt, batch_size,
        max_new_tokens or bench.max_new_tokens or 64,
    )  # fmt: skip
    rows = prediction_rows(items, predictions, paths, out, bench.correct)
    write_jsonl(out / "predictions.jsonl", rows)
    scores = bench.metrics(items, predictions)
    judged: dict[str, Any] | None = None
    if judge is not None and bench.judge is not None:
        log.info("eval: judging %d answers with %s", len(items), judge.model)
        judge_scores, facts = judge_benchmark(
            bench.judge, items, predictions, judge, out / "cache", out / "judgements.jsonl"
        )
        scores = {**scores, **judge_scores}
        judged = {"status": "scored", "model": judge.model, "temperature": judge.temperature,
                  "description": bench.judge.description, **facts}  # fmt: skip
    elif bench.judge is not None:
        judged = {"status": NOT_JUDGED.replace("set evaluate.judge", "pass --judge MODEL")}
    metrics = {
        "benchmark": benchmark,
        "domain": domain.name,
        "model": resolved.name,
        "num_items": len(items),
        "prompt_example": format_question(items[0], bench.prompt),
        "metrics": scores,
        "args": args,
        "skipped": dict(ctx.skipped),
    }
    if judged is not None:
        metrics["judge"] = judged
    notes = bench.notes(items) if bench.notes else []
    if notes:  # caveats about the question set, e.g. answer types guessed by a rule
        metrics["notes"] = notes
    metrics.update(specs_record(benchmark_specs(bench), scores))  # what each metric means
    write_json(out / "metrics.json", metrics)
    return metrics
