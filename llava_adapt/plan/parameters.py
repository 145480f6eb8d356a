"""Parameter counts of a LLaVA model, per part, from its config: the model is built on the meta device (shapes, no
memory, no weights) and its parameters are sorted into parts by the module table (`part_of`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import LlavaConfig, LlavaForConditionalGeneration

from llava_adapt.model.modules import PARTS, get_part, part_of


@dataclass(frozen=True)
class ParameterCounts:
    """What the plan needs to know about a model's parameters.

    Args:
        parts (`dict[str, int]`): parameters per part (`vision_tower`, `projector`, `language_model`, `lm_head`).
        lm_linear (`int`): parameters of the language model's `nn.Linear` layers (what QLoRA stores in 4 bits).
        lora_per_rank (`int`): the sum of `in_features + out_features` over the language model's `nn.Linear` layers:
            a LoRA adapter of rank r on each of them (LLaVA's rule, `lora_target_regex`) has r times this many
            parameters (A: r x in, B: out x r).
        largest_layer (`int`): parameters of the largest decoder or vision encoder layer (what ZeRO-3 and FSDP
            gather at a time).
    """

    parts: dict[str, int]
    lm_linear: int
    lora_per_rank: int
    largest_layer: int

    @property
    def total(self) -> int:
        return sum(self.parts.values())


def meta_model(config: LlavaConfig) -> LlavaForConditionalGeneration:
    """`LlavaForConditionalGeneration(config)` on the meta device: every shape, no memory, no weights."""
    with torch.device("meta"):
        return LlavaForConditionalGeneration(config)


def _layers(module: nn.Module) -> list[nn.Module]:
    """The repeated blocks of a stack (`layers` of a decoder, `encoder.layers` of a vision tower)."""
    for name, child in module.named_modules():
        if isinstance(child, nn.ModuleList) and name.rsplit(".", 1)[-1] == "layers":
            return list(child)
    return []


def count_parameters(config: LlavaConfig) -> ParameterCounts:
    """Count the parameters of the model `config` describes, per part, without allocating them.

    Args:
        config (`LlavaConfig`): the model's configuration.
    """
    model = meta_model(config)
    parts = dict.fromkeys(PARTS, 0)
    for name, param in model.named_parameters():  # tied weights are listed once
        part = part_of(model, name)
        if part is not None:
            parts[part] += param.numel()
    linears = [m for m in get_part(model, "language_model").modules() if isinstance(m, nn.Linear)]
    layers = _layers(get_part(model, "language_model")) + _layers(get_part(model, "vision_tower"))
    return ParameterCounts(
        parts=parts,
        lm_linear=sum(m.weight.numel() + (m.bias.numel() if m.bias is not None else 0) for m in linears),
        lora_per_rank=sum(m.in_features + m.out_features for m in linears),
        largest_layer=max((sum(p.numel() for p in layer.parameters()) for layer in layers), default=0),
    )
