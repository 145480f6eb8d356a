"""`llava-adapt eval`: any model (run directory, adapter, model folder) on one benchmark, with clear errors.

Reuses the finished tiny run of the publishing tests (a biomed run whose instruct/ holds a LoRA adapter) and
scores it on the `general` domain's synthetic `shapes_color` benchmark, which needs no data files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import typer
from typer.testing import CliRunner

from llava_adapt.cli.errors import CommandGroup
from llava_adapt.cli.eval import register
from llava_adapt.evaluate.resolve import ModelResolveError, resolve_model
from llava_adapt.model.aspect import image_aspect_ratio
from llava_adapt.run.manifest import RUNNING
from tests.hub.conftest import run_dir, run_template, write_manifest  # noqa: F401  (fixtures)

SHAPES = ["--domain", "general", "--benchmark", "shapes_color", "--arg", "num_images=6", "--max-new-tokens", "4"]


def _invoke(*args: str):
    app = typer.Typer(cls=CommandGroup)  # the root app's error handling
    register(app)
    return CliRunner().invoke(app, [str(a) for a in args])


def _rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_resolve_run_adapter_and_model_folders(run_template: Path) -> None:  # noqa: F811
    from_run = resolve_model(run_template)
    from_adapter = resolve_model(run_template / "instruct")
    base = resolve_model(run_template.parent / "base")
    assert (from_run.kind, from_adapter.kind, base.kind) == ("run", "adapter", "model")
    assert from_run.run is not None and from_run.run.recipe.domain == "biomed"
    merged, plain = from_run.model.state_dict(), base.model.state_dict()
    assert all(torch.equal(v, from_adapter.model.state_dict()[k]) for k, v in merged.items())
    assert any(not torch.equal(v, plain[k]) for k, v in merged.items())  # the adapter was merged in
    assert not any("lora" in k for k in merged)


@pytest.mark.slow
def test_eval_run_dir_writes_predictions_and_metrics(run_template: Path, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "out" / "shapes_color"
    result = _invoke("eval", run_template, *SHAPES, "--batch-size", "4", "--out", out.parent)
    assert result.exit_code == 0, result.output
    rows = _rows(out)
    assert len(rows) == 6
    assert {"id", "question", "answer", "prediction", "correct", "image"} <= set(rows[0])
    assert all((out / row["image"]).is_file() for row in rows)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["benchmark"] == "shapes_color" and metrics["num_items"] == 6
    assert metrics["metrics"]["accuracy"] == sum(r["correct"] for r in rows) / 6
    assert metrics["metrics"]["chance"] == 0.25
    assert metrics["metric_specs"]["chance"]["kind"] == "baseline" and metrics["primary_metric"] == "accuracy"
    assert "shapes_color: 6 questions" in result.stdout
    assert "chance=0.2500" in result.stdout and "num_closed=6" in result.stdout  # a count prints as an integer

    limited = _invoke("eval", run_template / "instruct", *SHAPES, "--limit", "3", "--out", tmp_path / "limited")
    assert limited.exit_code == 0, limited.output
    assert [r["prediction"] for r in _rows(tmp_path / "limited" / "shapes_color")] == [
        r["prediction"] for r in rows[:3]
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--benchmark", "shapes_colour"], "Did you mean 'shapes_color'?"),
        (["--domain", "generl"], "Did you mean 'general'?"),
        (["--arg", "num_imagez=3"], "invalid arguments for benchmark 'shapes_color'"),
        (["--split", "test"], "has no splits"),
    ],
)
def test_eval_argument_errors(run_template: Path, tmp_path: Path, extra: list[str], message: str) -> None:  # noqa: F811
    args = ["--domain", "general", "--benchmark", "shapes_color", *extra]
    result = _invoke("eval", run_template, *args, "--out", tmp_path / "out")
    assert result.exit_code == 2  # bad input (llava_adapt.errors)
    assert message in result.output
    assert not (tmp_path / "out").exists()


def test_eval_model_errors(run_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    write_manifest(run_dir, {"prepare": "complete", "generate": "complete", "align": "complete", "instruct": RUNNING})
    result = _invoke("eval", run_dir, *SHAPES, "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert "instruct stage" in result.output and "llava-adapt recipe run" in result.output
    missing = _invoke("eval", tmp_path / "nowhere", *SHAPES, "--out", tmp_path / "out")
    assert missing.exit_code == 2 and "does not exist" in missing.output
    with pytest.raises(ModelResolveError, match="neither a run directory"):
        resolve_model(tmp_path)
    no_domain = _invoke("eval", run_dir / "instruct", "--benchmark", "shapes_color")
    assert no_domain.exit_code == 2 and "--domain is required" in no_domain.output


def test_eval_help_has_an_example() -> None:
    result = _invoke("eval", "--help")
    assert result.exit_code == 0 and "Example: llava-adapt eval" in result.output


def test_image_aspect_ratio_is_the_saved_processors_unless_overridden(run_template: Path, tmp_path: Path) -> None:  # noqa: F811
    assert image_aspect_ratio(resolve_model(run_template).processor) == "crop"  # this run saved a cropping one
    assert image_aspect_ratio(resolve_model(run_template, image_aspect_ratio="pad").processor) == "pad"
    bad = _invoke("eval", run_template, *SHAPES, "--image-aspect-ratio", "square", "--out", tmp_path / "out")
    assert bad.exit_code == 2 and "use pad or crop" in bad.output
    assert not (tmp_path / "out").exists()
