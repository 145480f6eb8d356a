"""LLaVA-1.5-7B's shapes as local folders holding only `config.json` (nothing can be downloaded in tests).

The figures are the published ones: Vicuna-7B v1.5 (the Llama-2-7B shape), CLIP ViT-L/14 at 336 px, and llava-hf's
`llava-1.5-7b-hf` (the vocabulary of 32,000 grown to 32,064 for `<image>` and `<pad>`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

VICUNA_7B = {
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "vocab_size": 32000,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-05,
    "hidden_act": "silu",
    "tie_word_embeddings": False,
    "bos_token_id": 1,
    "eos_token_id": 2,
}
CLIP_L_336 = {
    "model_type": "clip_vision_model",
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "patch_size": 14,
    "image_size": 336,
    "projection_dim": 768,
    "hidden_act": "quick_gelu",
}
LLAVA_15_7B = {
    "model_type": "llava",
    "architectures": ["LlavaForConditionalGeneration"],
    "image_token_index": 32000,
    "projector_hidden_act": "gelu",
    "vision_feature_layer": -2,
    "vision_feature_select_strategy": "default",
    "image_seq_length": 576,
    "text_config": {**VICUNA_7B, "vocab_size": 32064, "pad_token_id": 32001},
    "vision_config": CLIP_L_336,
}


def write_config(folder: Path, config: dict) -> Path:
    """A model folder holding only `config.json`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return folder


@pytest.fixture
def llava_7b(tmp_path: Path) -> Path:
    """llava-hf/llava-1.5-7b-hf's config alone."""
    return write_config(tmp_path / "llava-1.5-7b-hf", LLAVA_15_7B)


@pytest.fixture
def components_7b(tmp_path: Path) -> tuple[Path, Path]:
    """`(vision tower, language model)`: CLIP ViT-L/14-336 and Vicuna-7B v1.5, configs alone."""
    return write_config(tmp_path / "clip-vit-large-patch14-336", CLIP_L_336), write_config(
        tmp_path / "vicuna-7b-v1.5", VICUNA_7B
    )
