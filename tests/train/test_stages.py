"""`align` and `instruct` on the tiny model: what trains, what stays frozen, what is saved, and resuming."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from PIL import Image
from safetensors.torch import load_file
from transformers import AutoModelForImageTextToText, AutoProcessor

from llava_adapt.model.config import TinyModelConfig
from llava_adapt.model.modules import part_of
from llava_adapt.model.tiny import build_tiny_model
from llava_adapt.stages import align, instruct
from llava_adapt.train.dataset import TrainingDataError
from tests.train.stage_helpers import context, make_recipe, prepare_data

pytestmark = pytest.mark.slow

PROCESSOR_FILES = {"chat_template.jinja", "processor_config.json", "tokenizer.json", "tokenizer_config.json"}


@pytest.fixture(scope="module")
def aligned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory after `prepare`, the conversations and `align`."""
    run_dir = tmp_path_factory.mktemp("run")
    recipe = make_recipe(run_dir)
    prepare_data(recipe)
    ctx = context(recipe, "align")
    align.run(ctx)
    assert ctx.info["trainable_parameters"] == {"projector": 24832}
    assert ctx.kept == 12
    return run_dir


def _copy(aligned: Path, tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    shutil.copytree(aligned, run_dir, ignore=shutil.ignore_patterns("instruct"))
    return run_dir


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return AutoModelForImageTextToText.from_pretrained(folder).state_dict()


def _changed_parts(before: dict, after: dict, model) -> set[str]:
    return {part_of(model, k) for k in before if not torch.equal(before[k], after[k])}


def test_align_trains_only_the_projector_and_saves_a_loadable_model(aligned: Path) -> None:
    fresh, _ = build_tiny_model(TinyModelConfig(), seed=0)
    before = fresh.state_dict()
    after = _weights(aligned / "align")
    assert _changed_parts(before, after, fresh) == {"projector"}
    assert all(not torch.equal(before[k], after[k]) for k in after if part_of(fresh, k) == "projector")
    for folder in (aligned / "align", aligned / "align" / "checkpoints" / "checkpoint-2"):
        names = {p.name for p in folder.iterdir()}
        assert PROCESSOR_FILES | {"config.json", "model.safetensors"} <= names
    assert (aligned / "align" / "checkpoints" / "checkpoint-2" / "trainer_state.json").is_file()


def test_instruct_lora_trains_lm_and_projector_and_loads_with_stock_classes(aligned: Path, tmp_path: Path) -> None:
    run_dir = _copy(aligned, tmp_path)
    recipe = make_recipe(run_dir)
    ctx = context(recipe, "instruct")
    instruct.run(ctx)
    assert set(ctx.info["trainable_parameters"]) == {"projector", "language_model"}
    out = run_dir / "instruct"
    assert PROCESSOR_FILES | {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in out.iterdir()}
    adapter = load_file(out / "adapter_model.safetensors")
    assert all("lora_" in k and ".language_model." in k or "multi_modal_projector" in k for k in adapter)
    assert not any("vision_tower" in k for k in adapter)
    # stock loading: base from the adapter config (align/, offline), adapter with PEFT
    base = AutoModelForImageTextToText.from_pretrained(run_dir / "align")
    base_state = {k: v.clone() for k, v in base.state_dict().items()}
    model = PeftModel.from_pretrained(base, out).merge_and_unload()
    assert _changed_parts(base_state, model.state_dict(), model) == {"projector", "language_model"}
    processor = AutoProcessor.from_pretrained(out)
    image = next((run_dir / "data" / "images").glob("*.png"))
    text = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What color is the shape?"}]}],
        add_generation_prompt=True,
        tokenize=False,
    )
    inputs = processor(text=text, images=[Image.open(image)], add_special_tokens=False, return_tensors="pt")
    output = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert output.shape[1] > inputs["input_ids"].shape[1]


def test_instruct_full_mode_keeps_the_vision_tower_frozen(aligned: Path, tmp_path: Path) -> None:
    run_dir = _copy(aligned, tmp_path)
    recipe = make_recipe(run_dir, instruct={"mode": "full"})
    ctx = context(recipe, "instruct")
    instruct.run(ctx)
    assert set(ctx.info["trainable_parameters"]) == {"projector", "language_model", "lm_head"}
    base = _weights(run_dir / "align")
    after = _weights(run_dir / "instruct")
    fresh, _ = build_tiny_model(TinyModelConfig(), seed=0)
    assert _changed_parts(base, after, fresh) == {"projector", "language_model", "lm_head"}


def test_instruct_resumes_from_the_last_checkpoint_to_the_same_weights(aligned: Path, tmp_path: Path) -> None:
    run_dir = _copy(aligned, tmp_path)
    recipe = make_recipe(run_dir)
    instruct.run(context(recipe, "instruct"))
    uninterrupted = load_file(run_dir / "instruct" / "adapter_model.safetensors")
    # what a kill right after the step-2 checkpoint leaves behind
    out = run_dir / "instruct"
    shutil.rmtree(out / "checkpoints" / "checkpoint-4")
    for path in out.iterdir():
        if path.is_file():
            path.unlink()
    ctx = context(recipe, "instruct", resume=True)
    instruct.run(ctx)
    assert ctx.info["resumed_from"] == "checkpoint-2"
    assert ctx.info["global_step"] == 4
    resumed = load_file(out / "adapter_model.safetensors")
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.allclose(resumed[k], uninterrupted[k], atol=1e-6) for k in resumed)


def test_too_many_truncated_samples_stop_instruct_with_counts(aligned: Path, tmp_path: Path) -> None:
    run_dir = _copy(aligned, tmp_path)
    recipe = make_recipe(run_dir, instruct={"max_length": 24})
    ctx = context(recipe, "instruct")
    with pytest.raises(TrainingDataError, match="Raise max_length"):
        instruct.run(ctx)
    assert sum(ctx.skipped.values()) == 12
