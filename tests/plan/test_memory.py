"""The memory estimate: its terms worked out by hand for LLaVA-1.5-7B's LoRA stage, and how they move."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoConfig

from llava_adapt.plan.distributed import Distributed, read_accelerate_config, resolve_distributed
from llava_adapt.plan.errors import PlanError
from llava_adapt.plan.memory import MemoryEstimate, estimate_memory, shape_of
from llava_adapt.plan.parameters import count_parameters
from llava_adapt.plan.setup import training_setup
from llava_adapt.recipe.loader import load_recipe

SINGLE = Distributed("single", 1)


@pytest.fixture
def estimate(llava_7b: Path):
    config = AutoConfig.from_pretrained(llava_7b)
    counts, shape = count_parameters(config), shape_of(config)

    def run(*overrides: str, stage: str = "instruct", distributed: Distributed = SINGLE, **kw) -> MemoryEstimate:
        recipe = load_recipe("general", overrides=["model.source=llava", f"model.name_or_path={llava_7b}", *overrides])
        setup = training_setup(recipe.recipe, stage)
        return estimate_memory(shape, counts, setup, recipe.recipe.model, distributed, **kw)

    return run


def test_lora_stage_worked_out_by_hand(estimate):
    """LLaVA-1.5's LoRA stage (r=128, dropout 0.05), batch 16 x 2048 tokens, bf16, checkpointing, one GPU."""
    got = estimate("instruct.activation_checkpointing=true")
    total, lora, projector = 7_063_427_072, 319_815_680, 20_979_712
    # bf16 base + fp32 adapter + the projector's trainable bf16 copy (modules_to_save)
    assert got.weights == total * 2 + lora * 4 + projector * 2
    assert got.gradients == lora * 4 + projector * 2
    assert got.optimizer == 2 * got.gradients and got.gathered == 0
    h, i, kv, s, vocab = 4096, 11008, 4096, 2048, 32064
    layer = (6 * h + 2 * kv + 4 * i) * 2 + (6 * h + i) * 3  # SwiGLU layer (bf16) + LoRA dropout inputs and masks
    language = s * (32 * h * 2 + layer + 3 * h * 2)  # checkpointed: layer inputs + one layer + embeddings/norm
    logits = s * vocab * (2 + 8)
    vision = 25 * 577 * 1024 * 2  # frozen CLIP: its 24 + 1 hidden states
    projector_activations = 576 * (1024 + 2 * h) * 2
    assert got.activations == 16 * (language + logits + vision + projector_activations)
    assert 40 < got.total / 2**30 < 50


def test_checkpointing_lowers_the_peak(estimate):
    for stage in ("align", "instruct"):
        on, off = estimate(stage=stage, checkpointing=True), estimate(stage=stage, checkpointing=False)
        assert on.activations < off.activations and on.weights == off.weights


def test_sharding_over_eight(estimate):
    ddp, zero2, zero3 = (estimate(distributed=Distributed(kind, 8)) for kind in ("ddp", "zero2", "zero3"))
    assert zero3.weights < ddp.weights / 7 and zero3.gathered > 0
    assert zero2.weights > zero3.weights and zero2.gradients < ddp.gradients
    assert zero3.total < zero2.total < ddp.total + 1  # DeepSpeed's fp32 master copy is sharded away
    assert estimate(distributed=Distributed("fsdp", 8)).weights < ddp.weights / 7


def test_lora_below_full_and_qlora_below_lora(estimate):
    lora, full, qlora = (estimate(f"instruct.mode={mode}", checkpointing=True) for mode in ("lora", "full", "qlora"))
    assert lora.total < full.total
    assert lora.gradients < full.gradients / 10 and lora.optimizer < full.optimizer / 10
    assert qlora.weights < lora.weights / 2
    assert full.gradients == (20_979_712 + 6_607_605_760 + 131_334_144) * 2  # bf16 model: grads in bf16
    # Without checkpointing, LoRA's dropout keeps every adapted layer's input again; without dropout it does not.
    assert estimate("instruct.lora.dropout=0").activations == estimate("instruct.mode=full").activations
    assert estimate().activations > estimate("instruct.mode=full").activations


@pytest.mark.slow
def test_fsdp_upcasts_trainable_parameters_to_fp32(estimate):
    fsdp = estimate("instruct.mode=full", distributed=Distributed("fsdp", 8))
    assert fsdp.gradients == (20_979_712 + 6_607_605_760 + 131_334_144) * 4 / 8


def test_accelerate_configs():
    assert read_accelerate_config("zero3") == Distributed("zero3", 8, "zero3.yaml")
    assert read_accelerate_config("zero2").kind == "zero2"
    assert read_accelerate_config("fsdp").kind == "fsdp" and read_accelerate_config("ddp").kind == "ddp"
    assert resolve_distributed("zero3", num_gpus=4) == Distributed("zero3", 4, "zero3.yaml")
    assert resolve_distributed(None, None) == Distributed("single", 1)
    assert resolve_distributed(None, 2) == Distributed("ddp", 2)
    with pytest.raises(PlanError, match="neither a shipped config"):
        read_accelerate_config("zero4")
