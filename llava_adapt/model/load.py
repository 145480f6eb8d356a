"""Getting the model of a recipe: from a llava-hf checkpoint, from components, or the built-in tiny model.

Also the dtype rule (`auto` = bf16 on a GPU that supports it, else fp32) and the chat-template check shared by the
three paths, and `load_pretrained`, which every later stage uses to reload what an earlier one saved.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from peft import PeftConfig, PeftModel
from transformers import (
    AutoModelForImageTextToText,
    AutoProcessor,
    BitsAndBytesConfig,
    LlavaForConditionalGeneration,
    ProcessorMixin,
)

from llava_adapt.model.aspect import set_image_aspect_ratio
from llava_adapt.model.chat_template import LLAVA_CHAT_TEMPLATE, has_generation_markers
from llava_adapt.model.components import from_components
from llava_adapt.model.config import ModelConfig
from llava_adapt.model.modules import module_map
from llava_adapt.model.tiny import build_tiny_model

log = logging.getLogger("llava_adapt")

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}  # fmt: skip


def resolve_dtype(name: str) -> torch.dtype:
    """Turn a recipe dtype/precision name into a torch dtype.

    Args:
        name (`str`): `"auto"` (bf16 when a CUDA GPU supports it, else fp32), or one of `DTYPES`.
    """
    if name == "auto":
        return torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32
    if name not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}; use auto or one of {sorted(DTYPES)}")
    return DTYPES[name]


def ensure_training_template(processor: ProcessorMixin) -> None:
    """Give `processor` the LLaVA-1.5 chat template unless it already marks assistant text for the loss.

    Assistant-only loss reads the `{% generation %}` markers of the template; a checkpoint whose template has none
    (older llava-hf revisions) gets the LLaVA-1.5 one, with a warning, instead of training on prompt tokens.
    """
    if not has_generation_markers(processor.chat_template):
        if processor.chat_template:
            log.warning("the checkpoint's chat template has no {%% generation %%} markers; using LLaVA-1.5's")
        processor.chat_template = LLAVA_CHAT_TEMPLATE
    tokenizer = processor.tokenizer
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token  # LLaVA v1 pads with unk


def load_pretrained(
    path: str,
    dtype: torch.dtype = torch.float32,
    attn_implementation: str | None = None,
    quantization_config: BitsAndBytesConfig | None = None,
) -> tuple[LlavaForConditionalGeneration, ProcessorMixin]:
    """Load a LLaVA model and its processor with the stock Auto classes (a Hub id or a folder).

    Args:
        path (`str`): a llava-hf checkpoint, or a folder an earlier stage saved.
        dtype (`torch.dtype`, defaults to `torch.float32`): weights dtype.
        attn_implementation (`str`, *optional*): passed to `from_pretrained`.
        quantization_config (`BitsAndBytesConfig`, *optional*): load quantized (QLoRA).

    Raises:
        UnsupportedModelError: the checkpoint's model type is not in the module table.
    """
    kwargs = {"dtype": dtype}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
    model = AutoModelForImageTextToText.from_pretrained(path, **kwargs)
    module_map(model)
    processor = AutoProcessor.from_pretrained(path)
    ensure_training_template(processor)
    return model, processor


def load_model(config: ModelConfig, seed: int = 0) -> tuple[LlavaForConditionalGeneration, ProcessorMixin]:
    """Build or load the model a recipe's `model:` section describes.

    Args:
        config (`ModelConfig`): the recipe's model section (`source: llava | components | tiny`).
        seed (`int`, defaults to `0`): initialisation seed of whatever is new (the tiny model, a fresh projector).

    Returns:
        `(model, processor)`, the processor with a training-compatible chat template and the recipe's
        `image_aspect_ratio` (pad to square or centre-crop).
    """
    dtype = resolve_dtype(config.dtype)
    if config.source == "tiny":
        model, processor = build_tiny_model(config.tiny, seed)
    elif config.source == "components":
        model, processor = from_components(
            config.vision_tower, config.language_model, dtype, config.attn_implementation, seed=seed
        )
    else:
        model, processor = load_pretrained(config.name_or_path, dtype, config.attn_implementation)
    set_image_aspect_ratio(processor, config.image_aspect_ratio)
    return model, processor


def load_trained(
    path: str | Path, dtype: torch.dtype = torch.float32, attn_implementation: str | None = None
) -> tuple[LlavaForConditionalGeneration, ProcessorMixin]:
    """Load what `align` or `instruct` saved, ready for inference: a full model, or a LoRA adapter merged into
    its base (`adapter_config.json`'s `base_model_name_or_path`, loaded with the stock Auto classes).

    Args:
        path (`str | Path`): the stage folder (or one of its checkpoints).
        dtype (`torch.dtype`, defaults to `torch.float32`): weights dtype.
        attn_implementation (`str`, *optional*): passed to `from_pretrained`.
    """
    path = Path(path)
    if not (path / "adapter_config.json").is_file():
        return load_pretrained(str(path), dtype, attn_implementation)
    base = PeftConfig.from_pretrained(str(path)).base_model_name_or_path
    model, _ = load_pretrained(base, dtype, attn_implementation)
    model = PeftModel.from_pretrained(model, str(path)).merge_and_unload()
    processor = AutoProcessor.from_pretrained(str(path))
    ensure_training_template(processor)
    return model, processor
