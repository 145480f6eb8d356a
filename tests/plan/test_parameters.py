"""Parameter counts on the meta device against LLaVA-1.5-7B's published figures, and against PEFT itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoConfig

from llava_adapt.model.config import ModelConfig, TinyModelConfig
from llava_adapt.plan.configs import planned_model
from llava_adapt.plan.parameters import count_parameters, meta_model
from llava_adapt.plan.setup import training_setup
from llava_adapt.recipe.loader import load_recipe
from tests.plan.conftest import CLIP_L_336, write_config

pytestmark = pytest.mark.slow

# LLaVA-1.5-7B, worked out by hand from the shapes in conftest.py (h = 4096, i = 11008, 32 layers, V = 32064;
# CLIP: 1024, 4096, 24 layers, 577 positions):
LM_LAYER = 4 * 4096 * 4096 + 3 * 4096 * 11008 + 2 * 4096  # q, k, v, o + gate, up, down + 2 RMSNorms = 202,383,360
LANGUAGE_MODEL = 32 * LM_LAYER + 32064 * 4096 + 4096  # layers + embed_tokens + final norm
LM_HEAD = 32064 * 4096
CLIP_LAYER = 4 * (1024 * 1024 + 1024) + (1024 * 4096 + 4096) + (4096 * 1024 + 1024) + 2 * 2 * 1024
VISION_TOWER = 3 * 14 * 14 * 1024 + 1024 + 577 * 1024 + 2 * 1024 + 24 * CLIP_LAYER + 2 * 1024
PROJECTOR = (1024 * 4096 + 4096) + (4096 * 4096 + 4096)
LORA_PER_LAYER = 4 * (4096 + 4096) + 2 * (4096 + 11008) + (11008 + 4096)  # r x (in + out) on the 7 linear layers


def test_hand_computation_gives_the_published_figures():
    assert PROJECTOR == 20_979_712
    assert VISION_TOWER == 303_507_456
    assert LANGUAGE_MODEL + LM_HEAD + VISION_TOWER + PROJECTOR == 7_063_427_072
    assert 128 * 32 * LORA_PER_LAYER == 319_815_680


def test_llava_15_7b_counts_match_the_published_total(llava_7b: Path):
    counts = count_parameters(AutoConfig.from_pretrained(llava_7b))
    assert counts.total == 7_063_427_072
    assert counts.parts == {
        "vision_tower": 303_507_456,
        "projector": 20_979_712,
        "language_model": 6_607_605_760,
        "lm_head": 131_334_144,
    }
    assert 128 * counts.lora_per_rank == 319_815_680
    assert counts.largest_layer == LM_LAYER


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ([], {"projector": 20_979_712, "lora": 319_815_680}),  # LLaVA-1.5 finetune_lora.sh: r=128 on every LM linear
        (["instruct.mode=qlora"], {"projector": 20_979_712, "lora": 319_815_680}),
        (["instruct.mode=full"], {"projector": 20_979_712, "language_model": 6_607_605_760, "lm_head": 131_334_144}),
        (
            ["instruct.train_vision_tower=true", "instruct.lora.train_lm_head=true", "instruct.lora.r=8"],
            {
                "projector": 20_979_712,
                "vision_tower": 303_507_456,
                "lm_head": 131_334_144,
                "lora": 8 * 32 * LORA_PER_LAYER,
            },
        ),
    ],
)
def test_trainable_parameters_per_mode(llava_7b: Path, overrides: list[str], expected: dict[str, int]):
    recipe = load_recipe("general", overrides=["model.source=llava", f"model.name_or_path={llava_7b}", *overrides])
    counts = count_parameters(AutoConfig.from_pretrained(llava_7b))
    assert training_setup(recipe.recipe, "align").trainable(counts) == {"projector": 20_979_712}
    assert training_setup(recipe.recipe, "instruct").trainable(counts) == expected


@pytest.mark.parametrize("train_lm_head", [False, True])
def test_lora_count_is_what_peft_puts_on_the_stage_s_own_lora_config(llava_7b: Path, train_lm_head: bool):
    """The plan counts LoRA analytically; PEFT, given the instruct stage's `lora_config`, makes exactly as many."""
    from peft import get_peft_model

    from llava_adapt.model.modules import part_of
    from llava_adapt.stages.instruct import lora_config
    from llava_adapt.train.config import LoraSettings

    config = AutoConfig.from_pretrained(llava_7b)
    lora = LoraSettings(r=128, alpha=256, train_lm_head=train_lm_head)
    model = meta_model(config)
    model.requires_grad_(False)
    peft_model = get_peft_model(model, lora_config(model, lora, train_vision_tower=False))
    trained: dict[str, int] = {}
    for name, param in peft_model.named_parameters():
        if param.requires_grad:
            key = "lora" if ".lora_" in name else part_of(peft_model, name)
            trained[key] = trained.get(key, 0) + param.numel()
    counts = count_parameters(config)
    recipe = load_recipe(
        "general",
        overrides=[
            "model.source=llava",
            f"model.name_or_path={llava_7b}",
            f"instruct.lora.train_lm_head={train_lm_head}",
        ],
    ).recipe
    assert training_setup(recipe, "instruct").trainable(counts) == trained
    assert trained["lora"] == 319_815_680


def test_tiny_model_counts_equal_the_built_model():
    from llava_adapt.model.tiny import build_tiny_model

    model, _ = build_tiny_model(TinyModelConfig())
    counts = count_parameters(model.config)
    assert counts.total == sum(p.numel() for p in model.parameters())


def test_original_format_checkpoint_is_planned_as_its_conversion(tmp_path: Path):
    """LLaVA-Med v1.5 as published (LlavaMistralForCausalLM + mm_* fields), config only: Mistral-7B (7,241,732,096
    parameters) with 64 more rows in the embeddings and lm_head, CLIP ViT-L/14-336 and the mlp2x_gelu projector."""
    mistral = {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
               "num_key_value_heads": 8, "vocab_size": 32000, "max_position_embeddings": 32768,
               "rms_norm_eps": 1e-5, "rope_theta": 1e6, "tie_word_embeddings": False}  # fmt: skip
    tower = write_config(tmp_path / "clip", CLIP_L_336)
    original = {**mistral, "architectures": ["LlavaMistralForCausalLM"], "model_type": "llava_mistral",
                "mm_vision_tower": str(tower), "mm_hidden_size": 1024, "mm_projector_type": "mlp2x_gelu",
                "mm_vision_select_layer": -2, "mm_vision_select_feature": "patch", "image_aspect_ratio": "pad",
                "mm_use_im_start_end": False}  # fmt: skip
    folder = write_config(tmp_path / "llava-med", original)
    planned = planned_model(ModelConfig(source="llava", name_or_path=str(folder)))
    counts = count_parameters(planned.config)
    assert counts.total == 7_241_732_096 + 2 * 64 * 4096 + VISION_TOWER + PROJECTOR
    assert counts.parts["projector"] == 20_979_712 and counts.parts["vision_tower"] == 303_507_456
