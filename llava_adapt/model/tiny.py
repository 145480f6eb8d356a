"""The built-in tiny LLaVA: CLIP vision tower + 2-layer GELU projector + Llama decoder, random init, offline.

It is the model of the `tiny` presets and of the tests: about 0.7M parameters, one `<image>` = 16 tokens at the
default 64 px / patch 16, a training step in tens of milliseconds on a CPU. Shapes follow
the configuration measured to learn colour questions in seconds on a CPU. A run of a `tiny` preset then trains its
language model on the run's text before stage 1 (`llava_adapt.train.text_pretraining`, `TinyModelConfig`'s
`text_pretraining_steps`), with a tokenizer learned from that text (`corpus`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import (
    CLIPImageProcessorPil,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaNextConfig,
    LlavaNextForConditionalGeneration,
    LlavaNextProcessor,
    LlavaProcessor,
    PreTrainedModel,
    ProcessorMixin,
)
from transformers.models.llava_next.image_processing_pil_llava_next import LlavaNextImageProcessorPil

from llava_adapt.model.chat_template import CHAT_FORMATS
from llava_adapt.model.config import TinyModelConfig
from llava_adapt.model.tiny_tokenizer import build_tiny_tokenizer


def build_tiny_model(
    config: TinyModelConfig, seed: int = 0, corpus: Sequence[str] | None = None
) -> tuple[PreTrainedModel, ProcessorMixin]:
    """Build the tiny model and its processor; the same `config`, `seed` and `corpus` give the same weights.

    Args:
        config (`TinyModelConfig`): sizes.
        seed (`int`, defaults to `0`): seed of the random initialisation (the global RNG state is left as it was).
        corpus (`Sequence[str]`, *optional*): text the tokenizer learns its merges from (`build_tiny_tokenizer`);
            defaults to the built-in word list.

    Returns:
        `(model, processor)`: a float32 `LlavaForConditionalGeneration` and a `LlavaProcessor` whose image
        processor is the PIL backend (`CLIPImageProcessorPil`, no torchvision needed); with
        `architecture: llava_next`, LLaVA-NeXT's model and processor classes (any-resolution tiles).
    """
    if config.image_size % config.patch_size:
        raise ValueError(f"tiny image_size {config.image_size} must be a multiple of patch_size {config.patch_size}")
    tokenizer = build_tiny_tokenizer(config.vocab_size, corpus)
    grid = config.image_size // config.patch_size
    vision_sizes = {
        "image_size": config.image_size,
        "patch_size": config.patch_size,
        "hidden_size": config.vision_hidden_size,
        "intermediate_size": 2 * config.vision_hidden_size,
        "num_hidden_layers": config.vision_layers,
        "num_attention_heads": config.attention_heads,
    }
    vision_config = CLIPVisionConfig(**vision_sizes)
    text_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.text_hidden_size,
        intermediate_size=2 * config.text_hidden_size,
        num_hidden_layers=config.text_layers,
        num_attention_heads=config.attention_heads,
        num_key_value_heads=config.attention_heads,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    common = {
        "text_config": text_config,
        "image_token_index": tokenizer.image_token_id,
        "vision_feature_layer": -2,  # LLaVA's penultimate layer (the last one then gets no gradient if trained)
        "projector_hidden_act": "gelu",
    }
    if config.architecture == "llava":
        llava_config = LlavaConfig(
            vision_config=vision_config, image_seq_length=grid * grid, vision_feature_select_strategy="default",
            **common,
        )  # fmt: skip
    else:
        llava_config = _tiled_config(config, vision_config, common)
    model_cls = {"llava": LlavaForConditionalGeneration, "llava_next": LlavaNextForConditionalGeneration}[
        config.architecture
    ]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_cls(llava_config)
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    processor = _processor(config, tokenizer)
    return model, processor


def _pinpoints(config: TinyModelConfig) -> list[list[int]]:
    """The any-resolution grid: one to two tiles a side."""
    side = config.image_size
    return [[side, side], [side, 2 * side], [2 * side, side], [2 * side, 2 * side]]


def _tiled_config(config: TinyModelConfig, vision_config: CLIPVisionConfig, common: dict) -> LlavaNextConfig:
    return LlavaNextConfig(
        vision_config=vision_config, image_grid_pinpoints=_pinpoints(config),
        vision_feature_select_strategy="default", **common,
    )  # fmt: skip


def _processor(config: TinyModelConfig, tokenizer) -> ProcessorMixin:
    """The processor of each architecture, with the PIL image backends (no torchvision needed)."""
    side = config.image_size
    template = CHAT_FORMATS["vicuna_v1"].template
    square = {"size": {"shortest_edge": side}, "crop_size": {"height": side, "width": side}}
    if config.architecture == "llava_next":
        return LlavaNextProcessor(
            image_processor=LlavaNextImageProcessorPil(**square, image_grid_pinpoints=_pinpoints(config)),
            tokenizer=tokenizer,
            patch_size=config.patch_size,
            vision_feature_select_strategy="default",
            num_additional_image_tokens=1,  # CLIP's CLS token (dropped again by the "default" strategy)
            chat_template=template,
        )
    return LlavaProcessor(
        image_processor=CLIPImageProcessorPil(**square),
        tokenizer=tokenizer,
        patch_size=config.patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS token (dropped again by the "default" strategy)
        chat_template=template,
    )
