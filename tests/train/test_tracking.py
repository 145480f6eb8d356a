"""Experiment tracking (`tracking:`): a tiny run reporting to TensorBoard writes, under the run directory, the loss and
learning-rate scalars of both training stages and the evaluation metrics — read back with TensorBoard's own reader."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llava_adapt.recipe.loader import RecipeError, load_recipe
from llava_adapt.run.layout import RunLayout
from llava_adapt.train.tracking import TrackingConfig, TrackingError, stage_tracker
from tests.train.tracking_worker import tracked_run

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]

SECRETS = {"HF_TOKEN": "hf_TrackingS3cret0123456789", "OPENAI_API_KEY": "sk-tracking-NEVER-LOG-ME-0123"}


def _scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """The scalars of the TensorBoard event files in `folder`, by tag: `(step, value)` pairs."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def _logged(history: list[dict], key: str) -> list[tuple[int, float]]:
    return [(entry["step"], entry[key]) for entry in history if key in entry and "train_loss" not in entry]


def test_a_tiny_run_reports_both_stages_and_evaluation_to_tensorboard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip(
        "tensorboard", reason="the tracking extra (pip install 'llava-adapt[tracking]') is not installed"
    )
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)
    run_dir = tmp_path / "my-run"
    tracked_run(run_dir, {"report_to": ["tensorboard"]})

    logs = run_dir / "tensorboard"
    assert sorted(p.name for p in logs.iterdir()) == ["align", "evaluate", "instruct"]
    for stage in ("align", "instruct"):
        scalars = _scalars(logs / stage)
        history = json.loads((run_dir / stage / "log_history.json").read_text())
        assert len(scalars["train/loss"]) == 4  # logging_steps 1, max_steps 4
        for tag, key in (("train/loss", "loss"), ("train/learning_rate", "learning_rate")):
            steps, values = zip(*scalars[tag], strict=True)
            logged_steps, logged = zip(*_logged(history, key), strict=True)
            assert steps == logged_steps == (1, 2, 3, 4) and values == pytest.approx(logged, rel=1e-6)
    assert _scalars(logs / "align")["train/loss"] != _scalars(logs / "instruct")["train/loss"]

    metrics = json.loads((run_dir / "eval" / "shapes_color" / "metrics.json").read_text())["metrics"]
    evaluated = _scalars(logs / "evaluate")
    ((step, accuracy),) = evaluated["eval/shapes_color/trained/accuracy"]
    assert step == 0 and accuracy == pytest.approx(metrics["accuracy"])
    assert {tag.split("/")[-1] for tag in evaluated} == set(metrics)
    for path in logs.rglob("*"):
        if path.is_file():
            assert not any(secret.encode() in path.read_bytes() for secret in SECRETS.values()), path
    assert "TENSORBOARD_LOGGING_DIR" not in os.environ  # set only while a stage reports


def test_a_tiny_run_reports_to_trackio_offline(tmp_path: Path) -> None:
    pytest.importorskip("trackio", reason="trackio is not installed (pip install trackio)")
    env = {**os.environ, "TRACKIO_DIR": str(tmp_path / "store"), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    run_dir = tmp_path / "tracked"
    subprocess.run([sys.executable, str(REPO / "tests/train/tracking_worker.py"), str(run_dir), "llava-adapt-test"],
                   check=True, env=env, cwd=REPO, timeout=600, capture_output=True)  # fmt: skip
    stored = json.loads((run_dir / "trackio.json").read_text())
    assert stored["runs"] == ["tracked"]  # one run, named after the run directory, that every stage resumed
    logs = stored["logs"]["tracked"]
    losses = [entry["train/loss"] for entry in logs if "train/loss" in entry]
    history = [json.loads((run_dir / stage / "log_history.json").read_text()) for stage in ("align", "instruct")]
    assert losses == pytest.approx([value for h in history for _, value in _logged(h, "loss")], rel=1e-6)
    assert sum("train/learning_rate" in entry for entry in logs) == 8  # 4 steps of each stage
    metrics = json.loads((run_dir / "eval" / "shapes_color" / "metrics.json").read_text())["metrics"]
    (accuracy,) = [
        entry["eval/shapes_color/trained/accuracy"] for entry in logs if "eval/shapes_color/trained/accuracy" in entry
    ]
    assert accuracy == pytest.approx(metrics["accuracy"])


def test_run_name_defaults_to_the_run_directory_and_the_ablation_has_its_own(tmp_path: Path) -> None:
    config = TrackingConfig(report_to=["none"], project="med")
    tracker = stage_tracker(config, tmp_path / "runs" / "biomed-tiny", "instruct")
    assert (tracker.run_name, tracker.project, tracker.enabled) == ("biomed-tiny", "med", False)
    assert tracker.training_arguments() == {"report_to": ["none"], "run_name": "biomed-tiny", "project": "med"}
    ablation = stage_tracker(TrackingConfig(run_name="x"), tmp_path, "instruct", without_align=True)
    assert ablation.run_name == "x-without-align"
    assert ablation.logging_dir == tmp_path / "tensorboard" / "instruct_without_align"
    owned = RunLayout(tmp_path).owned_by("instruct")  # a stage redone from scratch starts a fresh sub-run
    assert tmp_path / "tensorboard" / "instruct" in owned and ablation.logging_dir in owned


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is not None, reason="mlflow is installed here")
def test_a_backend_that_is_not_installed_fails_before_training(tmp_path: Path) -> None:
    with pytest.raises(TrackingError, match="'mlflow' but mlflow is not installed: pip install mlflow"):
        stage_tracker(TrackingConfig(report_to=["mlflow"]), tmp_path, "align")


def test_recipe_section_is_checked() -> None:
    with pytest.raises(RecipeError) as caught:
        load_recipe("general", preset="tiny", overrides=["tracking.report_to=[none,tensorboard]"])
    assert "'none' turns tracking off" in str(caught.value)
    with pytest.raises(RecipeError) as caught:
        load_recipe("general", preset="tiny", overrides=["tracking.report_to=[tensorbord]"])
    assert "tracking.report_to" in str(caught.value)
    loaded = load_recipe("general", preset="tiny", overrides=["tracking.report_to=[tensorboard]"]).recipe
    assert loaded.tracking.report_to == ["tensorboard"] and loaded.tracking.run_name is None
