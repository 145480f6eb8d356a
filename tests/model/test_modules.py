"""The module table drives freezing and LoRA targets."""

from __future__ import annotations

import re

import pytest
from peft import LoraConfig, get_peft_model
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from llava_adapt.model.config import TinyModelConfig
from llava_adapt.model.modules import (
    UnsupportedModelError,
    get_part,
    lora_target_regex,
    module_map,
    part_of,
    set_trainable,
)
from llava_adapt.model.tiny import build_tiny_model


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_model(TinyModelConfig(), seed=0)[0]


def test_every_parameter_belongs_to_exactly_one_part(tiny) -> None:
    parts = {part_of(tiny, name) for name, _ in tiny.named_parameters()}
    assert parts == {"vision_tower", "projector", "language_model", "lm_head"}
    assert isinstance(get_part(tiny, "projector").linear_1, nn.Linear)


def test_set_trainable_unfreezes_only_the_named_parts(tiny) -> None:
    set_trainable(tiny, ["projector"])
    trainable = {part_of(tiny, n) for n, p in tiny.named_parameters() if p.requires_grad}
    assert trainable == {"projector"}
    set_trainable(tiny, ["projector", "language_model", "lm_head"])
    frozen = {part_of(tiny, n) for n, p in tiny.named_parameters() if not p.requires_grad}
    assert frozen == {"vision_tower"}


def test_lora_targets_only_the_language_model(tiny) -> None:
    regex = lora_target_regex(tiny)
    # the vision tower has q_proj/k_proj/v_proj too: a plain name list would adapt it
    assert any(re.search(r"vision_tower.*q_proj$", n) for n, _ in tiny.named_modules())
    set_trainable(tiny, [])
    peft_model = get_peft_model(
        tiny, LoraConfig(r=4, lora_alpha=8, target_modules=regex, modules_to_save=[module_map(tiny).projector])
    )
    lora_modules = [n for n, _ in peft_model.named_modules() if n.endswith(".lora_A")]
    assert len(lora_modules) == 14  # 2 layers x (q, k, v, o, gate, up, down)
    assert all(".language_model." in n for n in lora_modules)
    trainable = {part_of(peft_model, n) for n, p in peft_model.named_parameters() if p.requires_grad}
    assert trainable == {"language_model", "projector"}
    peft_model.unload()


def test_unknown_model_type_names_the_table() -> None:
    llama = LlamaForCausalLM(LlamaConfig(vocab_size=10, hidden_size=8, intermediate_size=8, num_hidden_layers=1,
                                         num_attention_heads=1, num_key_value_heads=1))  # fmt: skip
    with pytest.raises(UnsupportedModelError, match="MODULE_TABLE"):
        module_map(llama)


def _onevision():
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration, SiglipVisionConfig

    vision = SiglipVisionConfig(image_size=32, patch_size=8, hidden_size=16, intermediate_size=32,
                                num_hidden_layers=2, num_attention_heads=2)  # fmt: skip
    text = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=2)  # fmt: skip
    config = LlavaOnevisionConfig(vision_config=vision, text_config=text, image_token_index=63,
                                  image_grid_pinpoints=[[32, 32], [32, 64]])  # fmt: skip
    return LlavaOnevisionForConditionalGeneration(config)


@pytest.mark.parametrize("architecture", ["llava_next", "llava_onevision"])
def test_next_and_onevision_parts_include_image_newline_with_the_projector(architecture: str) -> None:
    if architecture == "llava_next":
        model = build_tiny_model(TinyModelConfig(architecture="llava_next"), seed=0)[0]
    else:
        model = _onevision()
    parts = {name: part_of(model, name) for name, _ in model.named_parameters()}
    assert parts["model.image_newline"] == "projector"
    assert set(parts.values()) == {"vision_tower", "projector", "language_model", "lm_head"}
    set_trainable(model, ["projector"])
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert "model.image_newline" in trainable and {parts[n] for n in trainable} == {"projector"}
    regex = lora_target_regex(model)
    adapted = [n for n, _ in model.named_modules() if re.fullmatch(regex, n)]
    assert adapted and all(".language_model." in n for n in adapted)
