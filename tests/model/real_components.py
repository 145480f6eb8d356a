"""Component folders with real shapes and real tokenizers, configs only (`model.init: random` builds them).

The configs are the published ones of the models users start from, written out here because nothing can be
downloaded; `layers` reduces only the depth (widths, heads, vocabularies and image size stay real).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from transformers import CLIPImageProcessorPil

# openai/clip-vit-large-patch14-336, vision half (LLaVA-1.5's and LLaVA-Med v1.5's tower)
CLIP_VIT_L_336 = {
    "model_type": "clip_vision_model", "hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
    "num_attention_heads": 16, "image_size": 336, "patch_size": 14, "projection_dim": 768, "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
}  # fmt: skip
# lmsys/vicuna-7b-v1.5 (Llama-2-7B shape): LLaVA-1.5-7B's language model
VICUNA_7B = {
    "model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "intermediate_size": 11008,
    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32000,
    "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "bos_token_id": 1, "eos_token_id": 2,
    "tie_word_embeddings": False,
}  # fmt: skip
# mistralai/Mistral-7B-Instruct-v0.2: LLaVA-Med v1.5's language model
MISTRAL_7B = {
    "model_type": "mistral", "architectures": ["MistralForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336,
    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 32000,
    "max_position_embeddings": 32768, "rms_norm_eps": 1e-5, "rope_theta": 1e6, "sliding_window": None,
    "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": False,
}  # fmt: skip
# Qwen/Qwen2.5-0.5B-Instruct
QWEN25_05B = {
    "model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "hidden_size": 896, "intermediate_size": 4864,
    "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936,
    "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "rope_theta": 1e6, "tie_word_embeddings": True,
    "bos_token_id": 151643, "eos_token_id": 151645,
}  # fmt: skip
# meta-llama/Meta-Llama-3-8B-Instruct
LLAMA3_8B = {
    "model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336,
    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
    "max_position_embeddings": 8192, "rms_norm_eps": 1e-5, "rope_theta": 5e5, "bos_token_id": 128000,
    "eos_token_id": 128009, "tie_word_embeddings": False,
}  # fmt: skip


def write_language_model(folder: Path, config: dict, tokenizer_dir: Path, layers: int | None = None, **sizes) -> Path:
    """A language-model folder: `config.json` (depth reduced to `layers`, other keys overridden by `sizes`) and the
    tokenizer files of `tokenizer_dir`; no weights."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {**config, **sizes}
    if layers is not None:
        config["num_hidden_layers"] = layers
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    for path in tokenizer_dir.iterdir():
        shutil.copy(path, folder / path.name)
    return folder


def write_vision_tower(folder: Path, config: dict = CLIP_VIT_L_336, layers: int | None = None, **sizes) -> Path:
    """A CLIP vision-tower folder: `config.json` and CLIP's image processor at the tower's resolution; no weights."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {**config, **sizes}
    if layers is not None:
        config["num_hidden_layers"] = layers
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    side = config["image_size"]
    CLIPImageProcessorPil(size={"shortest_edge": side}, crop_size={"height": side, "width": side}).save_pretrained(
        folder
    )
    return folder
