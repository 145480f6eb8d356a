"""`instruct.compare_without_align`: LLaVA's "no stage 1" ablation, the same stage 2 trained from the model before
`align`, on the tiny model (a few steps); and its column in the run report."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForImageTextToText

from llava_adapt.evaluate.report import write_report
from llava_adapt.model.load import load_model
from llava_adapt.model.modules import part_of
from llava_adapt.run.layout import RunLayout
from llava_adapt.stages import align, instruct
from tests.train.stage_helpers import context, make_recipe, prepare_data

pytestmark = pytest.mark.slow

Starts = dict[Path, dict[str, torch.Tensor]]


def _spy(monkeypatch: pytest.MonkeyPatch) -> Starts:
    """Record the projector weights each `train_in_stage` call starts from, by stage folder."""
    starts: Starts = {}
    real = instruct.train_in_stage

    def spy(ctx, model, processor, samples, settings, stage_dir, **kwargs):
        projector = {k: v.detach().clone() for k, v in model.state_dict().items() if part_of(model, k) == "projector"}
        assert projector
        starts[Path(stage_dir)] = projector
        return real(ctx, model, processor, samples, settings, stage_dir, **kwargs)

    monkeypatch.setattr(instruct, "train_in_stage", spy)
    return starts


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Starts, dict]]:
    """A run directory after `align` and `instruct` with `compare_without_align`; the starting projector weights
    of both trainings; the instruct stage's manifest facts."""
    run_dir = tmp_path_factory.mktemp("run")
    recipe = make_recipe(run_dir, instruct={"compare_without_align": True})
    prepare_data(recipe)
    align.run(context(recipe, "align"))
    with pytest.MonkeyPatch.context() as monkeypatch:
        starts = _spy(monkeypatch)
        ctx = context(recipe, "instruct")
        instruct.run(ctx)
    assert ctx.kept == 12  # the main training's count, not doubled by the ablation
    yield run_dir, starts, ctx.info


def test_the_ablation_trains_the_same_stage_2_from_the_pre_align_model(compared: tuple[Path, Starts, dict]) -> None:
    run_dir, starts, info = compared
    main, ablation = run_dir / "instruct", run_dir / "instruct" / "without_align"
    assert list(starts) == [main, ablation]
    recipe = make_recipe(run_dir)
    untrained = load_model(recipe.model, recipe.seed)[0].state_dict()  # what evaluate scores as the baseline
    aligned = AutoModelForImageTextToText.from_pretrained(run_dir / "align").state_dict()
    for key, value in starts[ablation].items():
        assert torch.equal(value, untrained[key]), key
        assert not torch.equal(value, aligned[key]), key
    for key, value in starts[main].items():
        assert torch.equal(value, aligned[key]), key
    # same settings, its own folder and facts; its adapter's base is the saved untrained model, which loads offline
    assert info["global_step"] == info["without_align"]["global_step"] == 4
    assert info["base_model"] == str((run_dir / "align").resolve())
    assert info["without_align"]["base_model"] == str((run_dir / "instruct" / "base").resolve())
    adapter = json.loads((ablation / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str((run_dir / "instruct" / "base").resolve())
    assert (ablation / "checkpoints" / "checkpoint-4").is_dir() and (ablation / "log_history.json").is_file()
    assert instruct.without_align_model(RunLayout(run_dir)) == ablation
    owned = RunLayout(run_dir).owned_by("instruct")
    assert any(RunLayout(run_dir).instruct_without_align_dir.is_relative_to(path) for path in owned)


def test_a_resumed_ablation_does_not_redo_the_main_training(
    compared: tuple[Path, Starts, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, _, info = compared
    run_dir = tmp_path / "run"
    shutil.copytree(source, run_dir)
    # what a kill right after the ablation's step-2 checkpoint leaves behind
    ablation = run_dir / "instruct" / "without_align"
    shutil.rmtree(ablation / "checkpoints" / "checkpoint-4")
    for path in ablation.iterdir():
        if path.is_file():
            path.unlink()
    assert instruct.without_align_model(RunLayout(run_dir)) is None
    main_adapter = (run_dir / "instruct" / "adapter_model.safetensors").read_bytes()
    starts = _spy(monkeypatch)
    ctx = context(make_recipe(run_dir, instruct={"compare_without_align": True}), "instruct", resume=True)
    instruct.run(ctx)
    assert list(starts) == [ablation]  # the main training was complete: not redone
    assert (run_dir / "instruct" / "adapter_model.safetensors").read_bytes() == main_adapter
    assert ctx.info["train_loss"] == info["train_loss"] and ctx.kept == 12  # its facts and counts restored
    assert ctx.info["without_align"]["resumed_from"] == "checkpoint-2"
    assert ctx.info["without_align"]["global_step"] == 4
    assert instruct.without_align_model(RunLayout(run_dir)) == ablation


def test_the_report_shows_the_stage_2_only_column(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"stages": {}}))
    bench = tmp_path / "eval" / "synthetic"
    bench.mkdir(parents=True)
    metrics = {"metrics": {"closed_accuracy": 0.9}, "baseline": {"closed_accuracy": 0.2},
               "without_align": {"closed_accuracy": 0.6}}  # fmt: skip
    (bench / "metrics.json").write_text(json.dumps(metrics))
    row = {"id": "q1", "question": "Is there a lesion?", "answer": "yes", "answer_type": "closed"}
    for file, prediction in (("predictions.jsonl", "yes"), ("without_align_predictions.jsonl", "no")):
        (bench / file).write_text(json.dumps({**row, "prediction": prediction}) + "\n")
    text = " ".join(write_report(tmp_path).read_text().split())
    assert "<th>baseline (untrained)</th><th>stage 2 only (no align)</th><th>trained</th><th>change</th>" in text
    assert '0.2000</td><td class="num">0.6000</td><td class="num">0.9000</td><td class="num">+0.7000' in text
    assert "stage 2 only:</b> no" in text
