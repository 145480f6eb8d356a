"""Tiny checkpoints in LLaVA's ORIGINAL format, written the way LLaVA's code saves them: the language model's config
plus `mm_*` fields, `Llava{Llama,Mistral}ForCausalLM`, weights under `model.embed_tokens`, `model.layers`,
`model.norm`, `lm_head`, `model.mm_projector.{0,2}` (and, like LLaVA-Med v1.5, optionally the CLIP tower under
`model.vision_tower.vision_tower.`), the real LLaMA SentencePiece tokenizer, random weights."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn
from transformers import (
    CLIPImageProcessor,
    CLIPVisionConfig,
    CLIPVisionModel,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
)

from tests.real_tokenizers import VOCABULARIES, sentencepiece_model

VISION = {"image_size": 56, "patch_size": 14, "hidden_size": 24, "intermediate_size": 48, "num_hidden_layers": 3,
          "num_attention_heads": 2, "projection_dim": 16}  # fmt: skip
TEXT = {"vocab_size": 32000, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 512,
        "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": False}  # fmt: skip
FAMILIES = {
    "llama": (LlamaConfig, LlamaForCausalLM, "LlavaLlamaForCausalLM", "llava"),  # LLaVA-1.5's config.json
    "mistral": (MistralConfig, MistralForCausalLM, "LlavaMistralForCausalLM", "llava_mistral"),  # LLaVA-Med v1.5
}


def write_clip_tower(folder: Path, seed: int = 1) -> Path:
    """A tiny CLIP vision tower with CLIP's image processor (bicubic resize, centre crop, CLIP mean/std)."""
    torch.manual_seed(seed)
    CLIPVisionModel(CLIPVisionConfig(**VISION)).save_pretrained(folder)
    side = VISION["image_size"]
    CLIPImageProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side}).save_pretrained(folder)
    return folder


def projector(seed: int = 2) -> nn.Sequential:
    """LLaVA's `mlp2x_gelu` projector: Linear, GELU, Linear."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(VISION["hidden_size"], TEXT["hidden_size"]),
        nn.GELU(),
        nn.Linear(TEXT["hidden_size"], TEXT["hidden_size"]),
    )


def write_original(
    folder: Path,
    family: str,
    tokenizer_dir: Path,
    tower: Path,
    store_tower: bool = False,
    weights: str = "safetensors",
    seed: int = 0,
    sentencepiece: bool = False,
) -> Path:
    """Write an original-format checkpoint; `store_tower` keeps the CLIP weights inside (LLaVA-Med v1.5);
    `sentencepiece` ships the tokenizer as LLaVA-1.5's releases do: `tokenizer.model` + `tokenizer_config.json` of
    the slow `LlamaTokenizer` (`legacy: false`), no `tokenizer.json`."""
    config_cls, model_cls, architecture, model_type = FAMILIES[family]
    torch.manual_seed(seed)
    lm = model_cls(config_cls(**TEXT))
    state = {k: v.contiguous() for k, v in lm.state_dict().items() if "rotary" not in k}
    state.update({f"model.mm_projector.{k}": v for k, v in projector().state_dict().items()})
    if store_tower:
        tower_state = CLIPVisionModel.from_pretrained(tower).state_dict()
        state.update({f"model.vision_tower.vision_tower.{k}": v for k, v in tower_state.items()})
    folder.mkdir(parents=True)
    if weights == "safetensors":
        save_file(state, str(folder / "model.safetensors"))
    else:
        torch.save(state, folder / "pytorch_model.bin")
    config = {
        **lm.config.to_dict(),
        "architectures": [architecture],
        "model_type": model_type,
        "mm_vision_tower": str(tower),
        "mm_hidden_size": VISION["hidden_size"],
        "mm_projector_type": "mlp2x_gelu",
        "mm_vision_select_layer": -2,
        "mm_vision_select_feature": "patch",
        "image_aspect_ratio": "pad",
        "mm_use_im_start_end": False,
        "mm_use_im_patch_token": False,
        "mm_projector_lr": None,
        "tune_mm_mlp_adapter": False,
        "tokenizer_model_max_length": 2048,
        "tokenizer_padding_side": "right",
        "use_mm_proj": True,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    if sentencepiece:
        sentencepiece_model(Path(str(tokenizer_dir)).parent.parent / "gguf" / VOCABULARIES["llama-spm"],
                            folder / "tokenizer.model")  # fmt: skip
        tokenizer_config = {"tokenizer_class": "LlamaTokenizer", "legacy": False, "add_bos_token": True,
                            "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
                            "pad_token": None, "model_max_length": 2048, "padding_side": "right"}  # fmt: skip
        (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config), encoding="utf-8")
        return folder
    for path in tokenizer_dir.iterdir():
        shutil.copy(path, folder / path.name)
    return folder


def write_projector_file(path: Path) -> Path:
    """LLaVA's pretrain output: `mm_projector.bin` holding `model.mm_projector.*` only."""
    torch.save({f"model.mm_projector.{k}": v for k, v in projector(seed=5).state_dict().items()}, path)
    return path
