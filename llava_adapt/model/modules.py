"""The module table: where the vision tower, projector, language model and LM head sit in each supported model.

Freezing (which parts a stage trains) and LoRA targeting (which linear layers get adapters) read this table and
nothing else, so that no code guesses module names from substrings such as `"q_proj"` (which would also hit the
CLIP vision tower, whose attention layers carry the same names).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from torch import nn

from llava_adapt.errors import InputError

PARTS: tuple[str, ...] = ("vision_tower", "projector", "language_model", "lm_head")


@dataclass(frozen=True)
class ModuleMap:
    """Dotted module paths of the four parts of a LLaVA-style model, relative to the top-level model.

    Args:
        vision_tower (`str`): the image encoder (CLIP, SigLIP).
        projector (`str`): the vision-to-language projector (LLaVA-1.5: 2-layer GELU MLP).
        language_model (`str`): the decoder stack of the causal LM, without its output head.
        lm_head (`str`): the output projection onto the vocabulary.
        projector_parameters (`tuple[str, ...]`, defaults to `()`): learned parameters outside those modules that
            train with the projector (LLaVA-NeXT's and LLaVA-OneVision's `image_newline`, the embedding written
            after each row of image features). A LoRA stage cannot save a bare parameter, so there it stays as
            `align` left it.
    """

    vision_tower: str
    projector: str
    language_model: str
    lm_head: str
    projector_parameters: tuple[str, ...] = ()

    def path(self, part: str) -> str:
        """The module path of `part` (one of `PARTS`)."""
        if part not in PARTS:
            raise ValueError(f"unknown model part {part!r}; the parts are {list(PARTS)}")
        return getattr(self, part)


# model_type (config.model_type) -> where its parts are, in transformers 5's layout (`model.language_model`, ...).
MODULE_TABLE: dict[str, ModuleMap] = {
    "llava": ModuleMap(
        vision_tower="model.vision_tower",
        projector="model.multi_modal_projector",
        language_model="model.language_model",
        lm_head="lm_head",
    ),
    # LLaVA-NeXT (any-resolution tiles) and LLaVA-OneVision: the same parts, plus the image_newline embedding
    **{
        model_type: ModuleMap(
            vision_tower="model.vision_tower",
            projector="model.multi_modal_projector",
            language_model="model.language_model",
            lm_head="lm_head",
            projector_parameters=("model.image_newline",),
        )
        for model_type in ("llava_next", "llava_onevision")
    },
}


class UnsupportedModelError(InputError, ValueError):
    """The model's type has no entry in the module table."""


def _base_model(model: nn.Module) -> nn.Module:
    """The transformers model under a PEFT wrapper (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def module_map(model: nn.Module) -> ModuleMap:
    """Look up the module table entry of `model` (a transformers model, or a PEFT model wrapping one).

    Args:
        model (`nn.Module`): the model.

    Raises:
        UnsupportedModelError: its `config.model_type` is not in `MODULE_TABLE`.
    """
    model_type = getattr(getattr(_base_model(model), "config", None), "model_type", None)
    if model_type not in MODULE_TABLE:
        raise UnsupportedModelError(
            f"model_type {model_type!r} is not in llava_adapt's module table (supported: {sorted(MODULE_TABLE)}); "
            "add its vision tower / projector / language model / lm_head paths to "
            "llava_adapt.model.modules.MODULE_TABLE"
        )
    return MODULE_TABLE[model_type]


def get_part(model: nn.Module, part: str) -> nn.Module:
    """Return the sub-module of `model` that is `part` (`"vision_tower"`, `"projector"`, ...)."""
    base = _base_model(model)
    return base.get_submodule(module_map(base).path(part))


def part_of(model: nn.Module, parameter_name: str) -> str | None:
    """The part a parameter (named as in `model.named_parameters()`) belongs to, or `None`.

    Works for PEFT-wrapped models too: their `base_model.model.` prefix and `modules_to_save` copies are resolved.
    """
    mapping = module_map(model)
    name = parameter_name.removeprefix("base_model.model.")
    if name in mapping.projector_parameters:
        return "projector"
    for part in PARTS:
        prefix = mapping.path(part)
        if name == prefix or name.startswith(prefix + "."):
            return part
    return None


def set_trainable(model: nn.Module, parts: Iterable[str]) -> None:
    """Freeze every parameter of `model`, then unfreeze those of the listed parts.

    Args:
        model (`nn.Module`): a model whose type is in the module table.
        parts (`Iterable[str]`): the parts to train, from `PARTS`.
    """
    base = _base_model(model)
    base.requires_grad_(False)
    for part in parts:
        get_part(base, part).requires_grad_(True)
        if part == "projector":
            for name in module_map(base).projector_parameters:
                base.get_parameter(name).requires_grad_(True)


def lora_target_regex(model: nn.Module) -> str:
    """A PEFT `target_modules` regex that matches every linear layer of the language model and nothing else.

    LLaVA's own rule (`find_all_linear_names`): adapters on every `nn.Linear` of the LLM, none on the vision tower,
    the projector or `lm_head`. PEFT matches a string `target_modules` against the full module name with
    `re.fullmatch`, so the regex is anchored at the language model's path.

    Args:
        model (`nn.Module`): a model whose type is in the module table.
    """
    base = _base_model(model)
    prefix = module_map(base).language_model
    linear_leaves = sorted(
        {
            name.rsplit(".", 1)[-1]
            for name, mod in get_part(base, "language_model").named_modules()
            if isinstance(mod, nn.Linear)
        }
    )
    if not linear_leaves:
        raise UnsupportedModelError(f"the language model at {prefix!r} has no nn.Linear layers to put LoRA on")
    return rf"{re.escape(prefix)}\..*\.({'|'.join(map(re.escape, linear_leaves))})"
