"""`llava-adapt eval RUN_DIR` is the run's own evaluation: same settings, same numbers, its benchmarks by default,
results inside the run; options override the run's settings; a wrong benchmark is refused before the model loads.

Reuses the finished tiny run of the publishing tests (its instruct/ holds a LoRA adapter); the evaluate stage is run
on it with biomed's `synthetic` benchmark (drawn images, no data files), then `llava-adapt eval` on the same run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from llava_adapt.cli.errors import CommandGroup
from llava_adapt.cli.eval import register
from llava_adapt.domains.biomed import domain
from llava_adapt.evaluate import resolve
from llava_adapt.hub.run_info import load_run
from llava_adapt.stages import evaluate as evaluate_stage
from llava_adapt.stages.context import StageContext
from tests.hub.conftest import run_dir, run_template, write_recipe  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow

# Not the defaults (64 new tokens, batch 16), so that `eval` only matches by reading them from recipe.yaml.
EVALUATE = {"benchmarks": ["synthetic"], "args": {"synthetic": {"n_images": 4, "image_size": 32}},
            "max_new_tokens": 3, "batch_size": 3, "baseline": False}  # fmt: skip


def _invoke(*args: object):
    app = typer.Typer(cls=CommandGroup)  # the root app's error handling
    register(app)
    return CliRunner().invoke(app, [str(a) for a in args])


def _rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]


@pytest.fixture
def evaluated(run_dir: Path) -> Path:  # noqa: F811
    """The tiny run, with `evaluate` run by the stage on `EVALUATE`."""
    write_recipe(run_dir, evaluate=EVALUATE)
    recipe = load_run(run_dir).recipe
    evaluate_stage.run(StageContext(name="evaluate", recipe=recipe, domain=domain, layout=load_run(run_dir).layout))
    return run_dir


def test_eval_run_dir_reproduces_the_runs_own_evaluation(evaluated: Path, monkeypatch, tmp_path: Path) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    result = _invoke("eval", evaluated)
    assert result.exit_code == 0, result.output
    stage, cli = evaluated / "eval" / "synthetic", evaluated / "eval_cli" / "synthetic"
    own, again = json.loads((stage / "metrics.json").read_text()), json.loads((cli / "metrics.json").read_text())
    assert again["metrics"] == own["metrics"]
    assert again["num_items"] == own["num_items"] > 4  # several questions per image
    assert again["args"] == own["args"] == EVALUATE["args"]["synthetic"]
    assert [r["prediction"] for r in _rows(cli)] == [r["prediction"] for r in _rows(stage)]
    assert f"biomed/synthetic: {own['num_items']} questions" in result.stdout
    assert list(cwd.iterdir()) == []  # nothing in the working directory (no eval_results/)

    # An option overrides the run's setting, and only that one.
    longer = _invoke("eval", evaluated, "--max-new-tokens", 1, "--out", tmp_path / "short")
    assert longer.exit_code == 0, longer.output
    short = _rows(tmp_path / "short" / "synthetic")
    assert [r["id"] for r in short] == [r["id"] for r in _rows(stage)]
    assert [r["prediction"] for r in short] != [r["prediction"] for r in _rows(stage)]


def test_a_wrong_benchmark_is_refused_before_the_model_loads(run_dir: Path, monkeypatch, tmp_path: Path) -> None:  # noqa: F811
    write_recipe(run_dir, evaluate=EVALUATE)

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(resolve, "resolve_model", no_model)
    typo = _invoke("eval", run_dir, "--benchmark", "synthetc")
    assert typo.exit_code == 2 and "Did you mean 'synthetic'?" in typo.output
    bad_arg = _invoke("eval", run_dir, "--arg", "n_imagez=2")
    assert bad_arg.exit_code == 2 and "invalid arguments for benchmark 'synthetic'" in bad_arg.output
    no_judge = _invoke("eval", run_dir, "--judge", "gpt-4o")
    assert no_judge.exit_code == 2 and "no benchmark of synthetic has a judged score" in no_judge.output
    assert not (run_dir / "eval_cli").exists()


def test_anything_but_a_run_needs_an_output_folder(run_template: Path, monkeypatch, tmp_path: Path) -> None:  # noqa: F811
    monkeypatch.chdir(tmp_path)
    result = _invoke("eval", run_template / "instruct", "--domain", "general", "--benchmark", "shapes_color")
    assert result.exit_code == 2 and "--out DIR is required" in result.output
    assert list(tmp_path.iterdir()) == []


def test_help_states_the_defaults() -> None:
    result = _invoke("eval", "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "the run's own evaluation" in text and "eval_cli" in text
