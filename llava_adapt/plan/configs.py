"""The model a recipe trains, as a `LlavaConfig` read from configs alone: nothing is downloaded but config (and
tokenizer) files, no weights are loaded.

- `source: llava`: the `config.json` of `model.name_or_path` (a local folder, the Hugging Face cache, or the Hub);
- `source: components`: the vision tower's and the language model's configs, assembled as `from_components` does
  (LLaVA-1.5's 2-layer GELU projector, the vocabulary grown by `assembled_vocab_size`);
- `source: tiny`: the built-in tiny model's config.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import constants as hub_constants
from transformers import AutoConfig, AutoTokenizer, LlavaConfig, PretrainedConfig

from llava_adapt.model.components import VISION_ENCODERS, assembled_vocab_size, tokens_to_add
from llava_adapt.model.config import ModelConfig
from llava_adapt.model.modules import MODULE_TABLE
from llava_adapt.model.original import is_original_config, original_llava_config
from llava_adapt.model.original import read_config as read_original_config
from llava_adapt.plan.errors import PlanError

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "vocab.json")


@dataclass(frozen=True)
class PlannedModel:
    """The model of a recipe, as far as its configs tell.

    Args:
        config (`LlavaConfig`): the assembled configuration (shapes only).
        origin (`str`): where it was read, in words.
        vocabulary (`str`): how the vocabulary size was reached (`source: components`), else `""`.
    """

    config: LlavaConfig
    origin: str
    vocabulary: str = ""


def _offline() -> bool:
    return bool(hub_constants.HF_HUB_OFFLINE) or os.environ.get("TRANSFORMERS_OFFLINE", "0") not in ("", "0")


def read_config(name: str, key: str) -> PretrainedConfig:
    """`AutoConfig.from_pretrained(name)`, failing with one line that names the model and how to provide its config.

    Args:
        name (`str`): a Hub id or a local folder.
        key (`str`): the recipe key that names it (e.g. `"model.name_or_path"`).

    Raises:
        PlanError: the folder has no `config.json`, or the Hub id is neither cached nor reachable.
    """
    folder = Path(name).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise PlanError(f"{key} {name!r} is a folder without config.json; put the model's config.json there")
        try:
            return AutoConfig.from_pretrained(str(folder))
        except ValueError as exc:
            first = str(exc).splitlines()[0]
            raise PlanError(f"{key} {name!r}: its config.json cannot be read ({first})") from None
    try:
        return AutoConfig.from_pretrained(name)
    except (OSError, ValueError):
        why = "HF_HUB_OFFLINE is set" if _offline() else "the Hub cannot be reached"
        raise PlanError(
            f"cannot read the config.json of {key} {name!r}: no such local folder, not in the Hugging Face cache, "
            f"and {why}; set {key} to a local folder holding its config.json, or fetch it once with "
            f"`hf download {name} config.json` (HF_HUB_OFFLINE=1 then reads it from the cache)"
        ) from None


def _tokenizer_length(language_model: str) -> tuple[int | None, str]:
    """`len(tokenizer)` once `<image>` (and `<pad>` when it has none) are added, and how it was found; `None` when no
    tokenizer can be read."""
    folder = Path(language_model).expanduser()
    if folder.is_dir() and not any((folder / name).is_file() for name in TOKENIZER_FILES):
        return None, "no tokenizer files"
    try:
        tokenizer = AutoTokenizer.from_pretrained(language_model)
    except (OSError, ValueError, TypeError):
        return None, "tokenizer not readable"
    added = sum(tokens_to_add(tokenizer).values())
    return len(tokenizer) + added, f"tokenizer {len(tokenizer)} + {added} added"


def _components(model: ModelConfig) -> PlannedModel:
    vision = read_config(model.vision_tower, "model.vision_tower")
    vision = getattr(vision, "vision_config", vision)  # a full CLIP/SigLIP checkpoint: its vision half
    if vision.model_type not in VISION_ENCODERS:
        raise PlanError(
            f"model.vision_tower {model.vision_tower!r} is a {vision.model_type!r}; supported vision encoders: "
            f"{sorted(VISION_ENCODERS)}"
        )
    text = read_config(model.language_model, "model.language_model")
    length, how = _tokenizer_length(model.language_model)
    if length is None:
        length, how = text.vocab_size + 2, f"{how}: assumed {text.vocab_size} + <image> + <pad>"
    vocab = assembled_vocab_size(text.vocab_size, length)
    text.vocab_size = vocab
    _, strategy, _ = VISION_ENCODERS[vision.model_type]
    grid = vision.image_size // vision.patch_size
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_seq_length=grid * grid,
        vision_feature_select_strategy=strategy,
        vision_feature_layer=-2,
        projector_hidden_act="gelu",
    )
    origin = f"components {model.vision_tower} + {model.language_model}"
    return PlannedModel(config, origin, f"{vocab} rows ({how}, rounded up to a multiple of 64)")


def planned_model(model: ModelConfig) -> PlannedModel:
    """The `LlavaConfig` of a recipe's `model:` section, from configs only.

    Args:
        model (`ModelConfig`): the recipe's model section.

    Raises:
        PlanError: a config cannot be read, or describes a model the module table does not know.
    """
    if model.source == "tiny":
        from llava_adapt.model.tiny import build_tiny_model

        tiny, _ = build_tiny_model(model.tiny)
        return PlannedModel(tiny.config, "the built-in tiny model")
    if model.source == "components":
        return _components(model)
    original = read_original_config(model.name_or_path)
    if original is not None and is_original_config(original):
        # LLaVA's own format (LLaVA-1.5, LLaVA-Med v1.5): planned as the run will convert it
        vision = read_config(original.get("mm_vision_tower", ""), "the checkpoint's mm_vision_tower")
        config = original_llava_config(original, getattr(vision, "vision_config", vision))
        rows = assembled_vocab_size(config.text_config.vocab_size, config.text_config.vocab_size + 2)
        config.text_config.vocab_size = rows
        return PlannedModel(config, f"original-format checkpoint {model.name_or_path}, converted",
                            f"{rows} rows (+ <image> + <pad>, rounded up to a multiple of 64)")  # fmt: skip
    config = read_config(model.name_or_path, "model.name_or_path")
    if config.model_type not in MODULE_TABLE:
        raise PlanError(
            f"model.name_or_path {model.name_or_path!r} is a {config.model_type!r} model; llava-adapt plans "
            f"{sorted(MODULE_TABLE)} checkpoints"
        )
    return PlannedModel(config, f"config of {model.name_or_path}")
