"""The built-in tiny LLaVA: CLIP vision tower + 2-layer GELU projector + Llama decoder, random init, offline.

It is the model of the `tiny` presets and of the tests: about 0.7M parameters, one `<image>` = 16 tokens at the
default 64 px / patch 16, a training step in tens of milliseconds on a CPU. Shapes follow
the configuration measured to learn colour questions in seconds on a CPU.
"""

from __future__ import annotations

import torch
from transformers import (
    CLIPImageProcessorPil,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
)

from llava_adapt.model.chat_template import CHAT_FORMATS
from llava_adapt.model.config import TinyModelConfig
from llava_adapt.model.tiny_tokenizer import build_tiny_tokenizer


def build_tiny_model(config: TinyModelConfig, seed: int = 0) -> tuple[LlavaForConditionalGeneration, LlavaProcessor]:
    """Build the tiny model and its processor; the same `config` and `seed` give the same weights.

    Args:
        config (`TinyModelConfig`): sizes.
        seed (`int`, defaults to `0`): seed of the random initialisation (the global RNG state is left as it was).

    Returns:
        `(model, processor)`: a float32 `LlavaForConditionalGeneration` and a `LlavaProcessor` whose image
        processor is the PIL backend (`CLIPImageProcessorPil`, no torchvision needed).
    """
    if config.image_size % config.patch_size:
        raise ValueError(f"tiny image_size {config.image_size} must be a multiple of patch_size {config.patch_size}")
    tokenizer = build_tiny_tokenizer(config.vocab_size)
    grid = config.image_size // config.patch_size
    vision_config = CLIPVisionConfig(
        image_size=config.image_size,
        patch_size=config.patch_size,
        hidden_size=config.vision_hidden_size,
        intermediate_size=2 * config.vision_hidden_size,
        num_hidden_layers=config.vision_layers,
        num_attention_heads=config.attention_heads,
    )
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
    llava_config = LlavaConfig(
        vision_config=vision_config,
        text_config=text_config,
        image_token_index=tokenizer.image_token_id,
        image_seq_length=grid * grid,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,  # LLaVA's penultimate layer (the last one then gets no gradient if trained)
        projector_hidden_act="gelu",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlavaForConditionalGeneration(llava_config)
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": config.image_size},
        crop_size={"height": config.image_size, "width": config.image_size},
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=config.patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS token (dropped again by the "default" strategy)
        chat_template=CHAT_FORMATS["vicuna_v1"].template,
    )
    return model, processor
