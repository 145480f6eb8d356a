"""Starting a run from what users have: an original-format LLaVA checkpoint (converted once into the run) and
LLaVA's released stage-1 projector (`align.projector_init`: loaded, not trained)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForImageTextToText

from llava_adapt.model.config import TinyModelConfig
from llava_adapt.stages import align, instruct
from llava_adapt.stages.align import AlignError
from tests.model.original_checkpoints import write_clip_tower, write_original
from tests.train.stage_helpers import context, make_recipe, prepare_data

pytestmark = pytest.mark.slow


def _projector_file(path: Path, vision: int, text: int, seed: int = 7) -> Path:
    torch.manual_seed(seed)
    state = {
        "model.mm_projector.0.weight": torch.randn(text, vision), "model.mm_projector.0.bias": torch.randn(text),
        "model.mm_projector.2.weight": torch.randn(text, text), "model.mm_projector.2.bias": torch.randn(text),
    }  # fmt: skip
    torch.save(state, path)
    return path


def test_released_projector_is_loaded_and_align_does_not_train(tmp_path: Path) -> None:
    tiny = TinyModelConfig()
    released = _projector_file(tmp_path / "mm_projector.bin", tiny.vision_hidden_size, tiny.text_hidden_size)
    (tmp_path / "run").mkdir()
    recipe = make_recipe(tmp_path / "run", align={"projector_init": str(released)})
    prepare_data(recipe)
    ctx = context(recipe, "align")
    align.run(ctx)
    assert ctx.info["trained"] is False and ctx.info["projector_init"] == str(released)
    assert not (ctx.layout.align_dir / "log_history.json").exists()
    saved = AutoModelForImageTextToText.from_pretrained(ctx.layout.align_dir).model.multi_modal_projector
    original = torch.load(released, weights_only=True)
    assert torch.equal(saved.linear_1.weight, original["model.mm_projector.0.weight"])
    assert torch.equal(saved.linear_2.bias, original["model.mm_projector.2.bias"])
    stage2 = context(recipe, "instruct")
    instruct.run(stage2)  # stage 2 starts from align/, i.e. from the released projector
    assert stage2.info["base_model"] == str(ctx.layout.align_dir.resolve())

    wrong = _projector_file(tmp_path / "other.bin", 1024, 4096 // 64)
    (tmp_path / "bad").mkdir()
    bad = make_recipe(tmp_path / "bad", align={"projector_init": str(wrong)})
    prepare_data(bad)
    with pytest.raises(AlignError, match="trained for another vision tower or language model"):
        align.run(context(bad, "align"))


def test_original_checkpoint_in_a_recipe_is_converted_once_into_the_run(
    tmp_path: Path, real_tokenizers: dict[str, Path]
) -> None:
    tower = write_clip_tower(tmp_path / "clip")
    checkpoint = write_original(tmp_path / "llava-med", "mistral", real_tokenizers["llama-spm"], tower, True, "bin")
    (tmp_path / "run").mkdir()
    recipe = make_recipe(tmp_path / "run", model={"source": "llava", "name_or_path": str(checkpoint)})
    prepare_data(recipe)
    ctx = context(recipe, "align")
    align.run(ctx)
    converted = ctx.layout.converted_dir
    assert ctx.info["converted_from"] == str(checkpoint)
    conversion = json.loads((converted / "llava_conversion.json").read_text())
    assert conversion["family"] == "mistral" and conversion["chat_template"] == "mistral_instruct"
    assert ctx.info["trainable_parameters"] == {"projector": 24 * 32 + 32 + 32 * 32 + 32}
    stamp = (converted / "model.safetensors").stat().st_mtime_ns
    stage2 = context(recipe, "instruct")
    instruct.run(stage2)
    assert (converted / "model.safetensors").stat().st_mtime_ns == stamp  # converted once
    processor_template = (ctx.layout.instruct_dir / "chat_template.jinja").read_text()
    assert "[INST]" in processor_template
