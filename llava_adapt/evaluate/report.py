"""The run report: `RUN_DIR/report.html`, with its PNGs and thumbnails in `RUN_DIR/report/`.

The page is self-contained in that it needs no network, no JavaScript and no server: it references its images by
relative path, so `report.html` and `report/` open offline together (and the PNGs can be reused, e.g. in a model
card). Sections, each shown only when the run has what it needs:

- training: loss and learning-rate curves per stage, from the `log_history.json` that `align`, `instruct` and
  `finetune` write (or, for an interrupted stage, from the `trainer_state.json` of its last complete checkpoint);
- evaluation: per benchmark, a table of every metric in `eval/<benchmark>/metrics.json` with one column per model
  it records (`baseline` = untrained, `align` = after stage 1 when recorded, `without_align` = stage 2 trained
  without stage 1, LLaVA's "no stage 1" ablation, when recorded, `metrics` = the trained model, `ensemble` = its
  answers combined with the judge model's, `evaluate.ensemble`) and a bar chart of the scores, under the
  benchmark's `notes` (caveats about its question set) when it has any;
- stages: the manifest's table (status, time, attempts, records kept and skipped with reasons, errors);
- samples: the first predictions of each benchmark, wrong ones first, with their images, references and (when
  recorded) the stage-2-only model's and the baseline's answers.

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
from llava_adapt.evaluate.plots import plot_metrics, plot_training
from llava_adapt.hub.run_info import is_count
from llava_adapt.recipe.schema import STAGE_ORDER
from llava_adapt.run.atomic import atomic_path, write_text
from llava_adapt.run.layout import RunLayout
from llava_adapt.run.manifest import Manifest
from llava_adapt.train.trainer import last_checkpoint

TEMPLATE = Path(__file__).with_name("report.html.jinja")
REPORT_DIR = "report"
THUMBNAIL_PX = 192
# metrics.json keys that hold one model's scores, in column order, with their column titles.
COLUMNS = {"baseline": "baseline (untrained)", "align": "after align", "without_align": "stage 2 only (no align)",
           "metrics": "trained", "ensemble": "ensemble with the judge model"}  # fmt: skip
TRAINING_STAGES = ("align", "instruct", "finetune")
ABLATION_PREDICTIONS = "without_align_predictions.jsonl"  # the stage-2-only model's answers (evaluate stage)


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


def _format(value: float | None) -> str:
    if value is None:
        return ""
    return str(value) if isinstance(value, int) else f"{value:.4f}"


def _metrics_table(columns: dict[str, dict[str, float]]) -> dict[str, Any]:
    names = list(dict.fromkeys(m for scores in columns.values() for m in scores))
    titles = list(columns)
    with_change = COLUMNS["baseline"] in columns and COLUMNS["metrics"] in columns
    rows = []
    for name in names:
        cells = [_format(columns[t].get(name)) for t in titles]
        if with_change:
            before, after = columns[COLUMNS["baseline"]].get(name), columns[COLUMNS["metrics"]].get(name)
            change = after - before if None not in (before, after) and not is_count(name) else None
            cells.append("" if change is None else f"{change:+.4f}")
        rows.append({"name": name, "cells": cells})
    return {"titles": titles + (["change"] if with_change else []), "rows": rows}


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


def gallery(bench_dir: Path, report_dir: Path, size: int) -> list[Sample]:
    """Pick up to `size` predictions of a benchmark (wrong ones first) and thumbnail their images into
    `report_dir/gallery/<benchmark>/`."""
    rows = _predictions(bench_dir / "predictions.jsonl")
    baseline = {str(r.get("id")): r.get("prediction") for r in _predictions(bench_dir / "baseline_predictions.jsonl")}
    ablation = {str(r.get("id")): r.get("prediction") for r in _predictions(bench_dir / ABLATION_PREDICTIONS)}
    chosen = sorted(rows, key=lambda r: r.get("correct") is not False)[:size]
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
            history = training_history(layout.root / stage)
            if plot_training(history, stage, folder / f"{stage}_curves.png"):
                summary = next((e for e in reversed(history) if "train_loss" in e), {})
                training.append({"stage": stage, "image": f"{REPORT_DIR}/{stage}_curves.png", "summary": summary})
        benchmarks = []
        for path in sorted(layout.eval_dir.glob("*/metrics.json")):
            data = _read_json(path)
            name = path.parent.name
            columns = metric_columns(data if isinstance(data, dict) else {})
            scores = {t: {m: v for m, v in s.items() if not is_count(m)} for t, s in columns.items()}
            chart = plot_metrics(scores, name, folder / f"{name}_metrics.png")
            benchmarks.append(
                {
                    "name": name,
                    "num_items": data.get("num_items") if isinstance(data, dict) else None,
                    "prompt": data.get("prompt_example") if isinstance(data, dict) else None,
                    "table": _metrics_table(columns),
                    "ablation": COLUMNS["without_align"] in columns,
                    "notes": [str(n) for n in data.get("notes", [])] if isinstance(data, dict) else [],
                    "ensemble": _ensemble_line(data.get("ensemble_info") if isinstance(data, dict) else None),
                    "chart": f"{REPORT_DIR}/{name}_metrics.png" if chart else None,
                    "samples": gallery(path.parent, folder, gallery_size),
                }
            )
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    html = environment.from_string(TEMPLATE.read_text(encoding="utf-8")).render(
        run_dir=str(layout.root),
        run=manifest.data,
        recipe=recipe,
        training=training,
        benchmarks=benchmarks,
        stages=stage_rows(manifest, list(recipe.get("stages") or [])),
    )
    write_text(layout.root / "report.html", html)
    return layout.root / "report.html"
