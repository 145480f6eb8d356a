"""The run report: `RUN_DIR/report.html`, with its PNGs and thumbnails in `RUN_DIR/report/`.

The page is self-contained in that it needs no network, no JavaScript and no server: it references its images by
relative path, so `report.html` and `report/` open offline together (and the PNGs can be reused, e.g. in a model
card). Sections, each shown only when the run has what it needs:

- training: loss and learning-rate curves per stage, from the `log_history.json` that `align`, `instruct` and
  `finetune` write (or, for an interrupted stage, from the `trainer_state.json` of its last complete checkpoint),
  with the stage-2-only training (`<stage>/without_align/`) drawn next to the main one when the run has it; the
  caption's time is the manifest's (the same as the stages table), the trainer's own loop time beside it, labelled;
- evaluation: per benchmark, what was asked (questions per answer type, the distinct questions when there are
  few), a table of every metric in `eval/<benchmark>/metrics.json` with one column per model it records
  (`baseline` = untrained, `align` = after stage 1 when recorded, `without_align` = stage 2 trained without
  stage 1, LLaVA's "no stage 1" ablation, when recorded, `metrics` = the trained model, `ensemble` = its answers
  combined with the judge model's, `evaluate.ensemble`) and what kind each metric is, and a bar chart of the
  scores: only the metrics `metrics.json` declares as scores (`llava_adapt.evaluate.metric_spec`), with declared
  baselines (e.g. chance) as reference lines; counts and diagnostics stay in the table. A `metrics.json` without
  declarations gets every metric that is not a count drawn, and says so. Under the benchmark's `notes` (caveats
  about its question set) when it has any;
- stages: the manifest's table (status, time, attempts, records kept and skipped with reasons, errors);
- samples: predictions of each benchmark, wrong ones first, as many distinct images and questions as there are,
  with their images, references and (when recorded) the stage-2-only model's and the baseline's answers.

`write_report(run_dir)` regenerates both at any time (`llava-adapt report RUN_DIR`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml
from PIL import Image, UnidentifiedImageError

from llava_adapt.data.jsonl import RecordFileError, read_jsonl
from llava_adapt.errors import LlavaAdaptError
from llava_adapt.evaluate.metric_spec import MetricSpec, declared_spec, format_metric, read_specs, spec_of
from llava_adapt.evaluate.plots import plot_metrics, plot_training
from llava_adapt.run.atomic import atomic_path, write_text
from llava_adapt.run.checkpoints import last_checkpoint
from llava_adapt.run.layout import RunLayout
from llava_adapt.run.manifest import Manifest
from llava_adapt.run.stage_table import STAGE_ORDER, TRAINING_STAGES

TEMPLATE = Path(__file__).with_name("report.html.jinja")
REPORT_DIR = "report"
THUMBNAIL_PX = 192
# metrics.json keys that hold one model's scores, in column order, with their column titles.
COLUMNS = {"baseline": "baseline (untrained)", "align": "after align", "without_align": "stage 2 only (no align)",
           "metrics": "trained", "ensemble": "ensemble with the judge model"}  # fmt: skip
ABLATION_PREDICTIONS = "without_align_predictions.jsonl"  # the stage-2-only model's answers (evaluate stage)
ABLATION_DIR = "without_align"  # inside instruct/ and finetune/: the stage-2-only training
MAX_LISTED_QUESTIONS = 8  # a benchmark asking at most this many distinct questions lists them


class ReportError(LlavaAdaptError, ValueError):
    """The folder is not a run directory, or one of its files cannot be read."""


@dataclass
class Sample:
    """One sample prediction of the gallery."""

    id: str
    question: str
    answer: str
    prediction: str
    correct: bool | None
    baseline: str | None
    image: str | None
    without_align: str | None = None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path} is not valid JSON ({exc.msg})") from None


def training_history(stage_dir: Path) -> list[dict[str, Any]]:
    """A training stage's log history: `log_history.json`, else that of its last complete checkpoint, else `[]`."""
    if (stage_dir / "log_history.json").is_file():
        return _read_json(stage_dir / "log_history.json")
    checkpoint = last_checkpoint(stage_dir / "checkpoints")
    if checkpoint is None:
        return []
    return _read_json(checkpoint / "trainer_state.json").get("log_history", [])


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, float]:
    flat: dict[str, float] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            flat[f"{prefix}{key}"] = value
    return flat


def metric_columns(data: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The scores of each model a `metrics.json` records, by column title (see `COLUMNS`), flattened with `/`."""
    if not isinstance(data.get("metrics"), dict):  # a plain object of numbers is the trained model's scores
        return {COLUMNS["metrics"]: _flatten(data)}
    return {title: _flatten(data[key]) for key, title in COLUMNS.items() if isinstance(data.get(key), dict)}


def metric_kind(name: str, specs: dict[str, MetricSpec], primary: str | None) -> str:
    """What a metric is, in words, for the table's `kind` column (e.g. `score (primary)`, `baseline of accuracy`,
    `count`, `diagnostic, lower is better`)."""
    spec = declared_spec(name, specs)
    if spec is None:
        return f"{spec_of(name, specs).kind} (not declared)"
    words = [spec.kind + (" (primary)" if name == primary else "")]
    if spec.baseline_for:
        words = [f"baseline of {spec.baseline_for}"]
    if spec.percent:
        words.append("percent")
    if not spec.higher_is_better:
        words.append("lower is better")
    return ", ".join(words)


def _metrics_table(columns: dict[str, dict[str, float]], specs: dict[str, MetricSpec], primary: str | None) -> dict:
    names = list(dict.fromkeys(m for scores in columns.values() for m in scores))
    titles = list(columns)
    with_change = COLUMNS["baseline"] in columns and COLUMNS["metrics"] in columns
    rows = []
    for name in names:
        spec = spec_of(name, specs)
        cells = ["" if (v := columns[t].get(name)) is None else format_metric(v, spec) for t in titles]
        if with_change:
            before, after = columns[COLUMNS["baseline"]].get(name), columns[COLUMNS["metrics"]].get(name)
            changes = spec.kind in ("score", "diagnostic") and None not in (before, after)
            cells.append(f"{after - before:+.{2 if spec.percent else 4}f}" if changes else "")
        rows.append({"name": name, "cells": cells, "kind": metric_kind(name, specs, primary)})
    return {"titles": titles + (["change"] if with_change else []), "rows": rows}


def chart_data(
    columns: dict[str, dict[str, float]], specs: dict[str, MetricSpec], primary: str | None
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """What a benchmark's chart draws: the scores of each model (primary first), and the declared baselines by the
    score they are a baseline of (e.g. `{"accuracy": {"chance": 0.31}}`, from the trained model's column).

    Without declarations (`specs` empty), every metric that is not a count is taken for a score.
    """

    def drawn(name: str) -> bool:
        kind = spec_of(name, specs).kind
        return kind == "score" if specs else kind != "count"

    scores = {}
    for title, values in columns.items():
        order = sorted(values, key=lambda m: m != primary)  # stable: the table's order otherwise
        scores[title] = {m: values[m] for m in order if drawn(m)}
    trained = columns.get(COLUMNS["metrics"]) or next(iter(columns.values()), {})
    references: dict[str, dict[str, float]] = {}
    for name, value in trained.items():
        spec = declared_spec(name, specs)
        if spec is not None and spec.kind == "baseline" and spec.baseline_for:
            references.setdefault(spec.baseline_for, {})[name] = value
    return scores, references


def _ensemble_line(info: Any) -> str:
    """One line on the ensemble column (`metrics.json`'s `ensemble_info`), or `""` without one."""
    if not isinstance(info, dict):
        return ""
    text = f"ensemble with the judge model: {info.get('kind', '?')} with {info.get('model', '?')}"
    return f"{text} — {info['description']}" if info.get("description") else text


def _predictions(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    try:
        return [row for _, row in read_jsonl(path)]
    except RecordFileError as exc:
        raise ReportError(str(exc)) from None


def _find_image(row: dict[str, Any], bench_dir: Path) -> Path | None:
    if row.get("image"):
        path = Path(row["image"])
        path = path if path.is_absolute() else bench_dir / path
        return path if path.is_file() else None
    found = sorted((bench_dir / "images").glob(f"{row.get('id')}.*")) if row.get("id") else []
    return found[0] if found else None


def _thumbnail(source: Path | None, target: Path) -> bool:
    if source is None:
        return False
    try:
        with Image.open(source) as image:
            image = image.convert("RGB")
            image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            target.parent.mkdir(parents=True, exist_ok=True)
            image.save(target, format="PNG")
    except (UnidentifiedImageError, OSError):
        return False
    return True


def pick_samples(rows: list[dict[str, Any]], size: int) -> list[dict[str, Any]]:
    """Up to `size` predictions to show, wrong ones first (then in file order), as varied as the benchmark allows:
    first rows whose image and question are both new to the selection, then rows with a new image, then any.

    Args:
        rows (`list[dict]`): `predictions.jsonl`'s rows (`image`, `question`, `correct`, ...).
        size (`int`): how many to pick.
    """
    ranked = sorted(rows, key=lambda r: r.get("correct") is not False)
    picked: list[int] = []
    images: set[str] = set()
    questions: set[str] = set()
    for new_question in (True, False):
        for n, row in enumerate(ranked):
            if len(picked) == size:
                break
            image, question = str(row.get("image") or row.get("id")), str(row.get("question"))
            if n not in picked and image not in images and (question not in questions or not new_question):
                picked.append(n)
                images.add(image)
                questions.add(question)
    picked += [n for n in range(len(ranked)) if n not in picked][: size - len(picked)]
    return [ranked[n] for n in sorted(picked)]


def question_summary(rows: list[dict[str, Any]], prompt_example: Any) -> dict[str, Any]:
    """What a benchmark asked, from its `predictions.jsonl` rows: questions per answer type (`closed`, `open`),
    the distinct questions with their counts when there are at most `MAX_LISTED_QUESTIONS`, else their number, and
    the first question's prompt as sent (`metrics.json`'s `prompt_example`) when the benchmark's prompt template
    added to it (e.g. the choices); a prompt that is the question itself is not repeated."""
    types: dict[str, int] = {}
    asked: dict[str, int] = {}
    for row in rows:
        if row.get("answer_type"):
            types[str(row["answer_type"])] = types.get(str(row["answer_type"]), 0) + 1
        if row.get("question"):
            asked[str(row["question"])] = asked.get(str(row["question"]), 0) + 1
    first = str(rows[0].get("question") or "") if rows else ""
    example = str(prompt_example or "")
    prompt = example if first and first in example and example != first else None
    listed = sorted(asked.items(), key=lambda kv: -kv[1]) if len(asked) <= MAX_LISTED_QUESTIONS else []
    return {"types": types, "distinct": len(asked), "listed": listed, "prompt": prompt}


def gallery(bench_dir: Path, report_dir: Path, size: int) -> list[Sample]:
    """Pick up to `size` predictions of a benchmark (`pick_samples`) and thumbnail their images into
    `report_dir/gallery/<benchmark>/`."""
    rows = _predictions(bench_dir / "predictions.jsonl")
    baseline = {str(r.get("id")): r.get("prediction") for r in _predictions(bench_dir / "baseline_predictions.jsonl")}
    ablation = {str(r.get("id")): r.get("prediction") for r in _predictions(bench_dir / ABLATION_PREDICTIONS)}
    chosen = pick_samples(rows, size)
    samples = []
    for n, row in enumerate(chosen):
        relative = f"gallery/{bench_dir.name}/{n:03d}.png"
        has_image = _thumbnail(_find_image(row, bench_dir), report_dir / relative)
        samples.append(
            Sample(
                id=str(row.get("id", "")),
                question=str(row.get("question", "")),
                answer=str(row.get("answer", "")),
                prediction=str(row.get("prediction", "")),
                correct=row.get("correct"),
                baseline=baseline.get(str(row.get("id"))),
                image=f"{REPORT_DIR}/{relative}" if has_image else None,
                without_align=ablation.get(str(row.get("id"))),
            )
        )
    return samples


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)} min {rest:.0f} s" if minutes else f"{rest:.1f} s"


def training_summary(label: str, history: list[dict[str, Any]]) -> dict[str, Any]:
    """One training's line of a stage's caption: its label, optimizer steps, mean training loss, and the time of
    the trainer's loop alone (`train_runtime`, formatted; empty when not logged) — all from the log history."""
    summary = next((e for e in reversed(history) if "train_loss" in e), {})
    steps = summary.get("step", max((e.get("step", 0) for e in history), default=0))
    return {"label": label, "steps": steps, "loss": summary.get("train_loss"),
            "loop_time": _duration(summary.get("train_runtime"))}  # fmt: skip


def benchmark_section(bench_dir: Path, report_dir: Path, gallery_size: int) -> dict[str, Any]:
    """What the report shows of one evaluated benchmark (`eval/<benchmark>/`), its chart and thumbnails written
    into `report_dir`."""
    data = _read_json(bench_dir / "metrics.json")
    data = data if isinstance(data, dict) else {}
    name = bench_dir.name
    columns = metric_columns(data)
    specs, primary = read_specs(data)
    scores, references = chart_data(columns, specs, primary)
    drawn = {m for values in scores.values() for m in values}
    percent = bool(drawn) and all(spec_of(m, specs).percent for m in drawn)
    chart = plot_metrics(
        scores, name, report_dir / f"{name}_metrics.png", references,
        label=lambda m, v: format_metric(v, spec_of(m, specs)), xlabel="score (%)" if percent else "score",
    )  # fmt: skip
    return {
        "name": name,
        "num_items": data.get("num_items"),
        "asked": question_summary(_predictions(bench_dir / "predictions.jsonl"), data.get("prompt_example")),
        "declared": bool(specs),
        "references": bool(references),
        "table": _metrics_table(columns, specs, primary),
        "ablation": COLUMNS["without_align"] in columns,
        "notes": [str(n) for n in data.get("notes", [])],
        "ensemble": _ensemble_line(data.get("ensemble_info")),
        "chart": f"{REPORT_DIR}/{name}_metrics.png" if chart else None,
        "samples": gallery(bench_dir, report_dir, gallery_size),
    }


def text_pretraining(manifest: Manifest) -> dict[str, Any] | None:
    """What the first stage that built the tiny model recorded of its text pretraining (`texts`, `steps`,
    `first_loss`, `last_loss`), or None when the run's model was not text-pretrained."""
    for name in STAGE_ORDER:
        summary = ((manifest.stage(name) or {}).get("info") or {}).get("tiny_text_pretraining")
        if isinstance(summary, dict):
            return summary
    return None


def stage_rows(manifest: Manifest, planned: list[str]) -> list[dict[str, Any]]:
    """One row per stage (those the recipe plans and those the manifest records), in curriculum order."""
    names = [s for s in STAGE_ORDER if s in planned or manifest.stage(s)]
    rows = []
    for name in names:
        entry = manifest.stage(name) or {}
        counts, info = entry.get("counts", {}), entry.get("info", {})
        notes = [f"{k}: {info[k]:.4g}" if isinstance(info[k], float) else f"{k}: {info[k]}"
                 for k in ("train_loss", "global_step", "resumed_from") if k in info]  # fmt: skip
        rows.append(
            {
                "name": name,
                "status": entry.get("status", "not run"),
                "started": entry.get("started", ""),
                "time": _duration(entry.get("seconds")),
                "attempts": entry.get("attempts", ""),
                "kept": counts.get("kept", ""),
                "skipped": counts.get("skipped", {}),
                "notes": ", ".join(notes),
                "error": entry.get("error", ""),
            }
        )
    return rows


def write_report(run_dir: str | Path, gallery_size: int = 8) -> Path:
    """Write `RUN_DIR/report.html` and its figures in `RUN_DIR/report/` (both replaced atomically).

    Args:
        run_dir (`str | Path`): a run directory (it has `manifest.json`); stages that have not run are shown as such.
        gallery_size (`int`, defaults to `8`): sample predictions shown per benchmark.

    Returns:
        The path of `report.html`.

    Raises:
        ReportError: the folder has no `manifest.json`, or a file the report reads is malformed.
    """
    layout = RunLayout(Path(run_dir))
    if not layout.manifest.is_file():
        raise ReportError(f"{layout.root} is not a llava-adapt run directory (no manifest.json)")
    try:
        manifest = Manifest.load(layout.manifest)
    except ValueError as exc:
        raise ReportError(str(exc)) from None
    recipe: dict[str, Any] = {}
    if layout.recipe.is_file():
        recipe = yaml.safe_load(layout.recipe.read_text(encoding="utf-8")) or {}
    with atomic_path(layout.root / REPORT_DIR) as folder:
        folder.mkdir()
        training = []
        for stage in TRAINING_STAGES:
            histories = {stage: training_history(layout.root / stage)}
            if (layout.root / stage / ABLATION_DIR).is_dir():
                histories[COLUMNS["without_align"]] = training_history(layout.root / stage / ABLATION_DIR)
            if plot_training(histories, stage, folder / f"{stage}_curves.png"):
                entry = manifest.stage(stage) or {}
                training.append(
                    {
                        "stage": stage,
                        "image": f"{REPORT_DIR}/{stage}_curves.png",
                        "runs": [training_summary(label, h) for label, h in histories.items() if h],
                        "stage_time": _duration(entry.get("seconds")),
                    }
                )
        benchmarks = [
            benchmark_section(path.parent, folder, gallery_size)
            for path in sorted(layout.eval_dir.glob("*/metrics.json"))
        ]
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    html = environment.from_string(TEMPLATE.read_text(encoding="utf-8")).render(
        run_dir=str(layout.root),
        run=manifest.data,
        recipe=recipe,
        training=training,
        text_pretraining=text_pretraining(manifest),
        benchmarks=benchmarks,
        stages=stage_rows(manifest, list(recipe.get("stages") or [])),
    )
    write_text(layout.root / "report.html", html)
    return layout.root / "report.html"
