"""LLaVA's original checkpoint format (LLaVA-1.5, LLaVA-Med v1.5, LLaVA's stage-1 projectors) → a llava-hf folder.

The original format, as LLaVA's own code (`llava/model/llava_arch.py`, `language_model/llava_llama.py`,
`llava_mistral.py`, `multimodal_encoder/clip_encoder.py`, `multimodal_projector/builder.py`) writes and reads it:

- `config.json`: the language model's config plus `mm_*` fields; `architectures` `LlavaLlamaForCausalLM` or
  `LlavaMistralForCausalLM`. LLaVA-1.5's configs say `model_type: "llava"` (the same string as llava-hf's, which
  nests a `text_config` and has no `mm_*` fields), later LLaVA code writes `llava_llama`, LLaVA-Med v1.5
  `llava_mistral`. `mm_vision_tower` names the CLIP tower (loaded by that name; LLaVA-Med v1.5 also stores its
  weights), `mm_projector_type` `mlp2x_gelu` = Linear, GELU (exact), Linear; `mm_vision_select_layer` (-2) is the
  tower layer whose features feed the projector; `mm_vision_select_feature` `patch` drops CLIP's CLS token
  (`cls_patch` keeps it); `image_aspect_ratio` `pad` pads images to a square with the CLIP mean colour.
- weights: `model.embed_tokens.*`, `model.layers.*`, `model.norm.*`, `lm_head.*`, `model.mm_projector.{0,2}.*`,
  optionally `model.vision_tower.vision_tower.vision_model.*`; in safetensors or `pytorch_model*.bin` shards, which
  are read with `torch.load(weights_only=True)` (no code from a checkpoint ever runs).
- LLaVA's pretrain stage saves the projector alone (`mm_projector.bin`, keys `model.mm_projector.*`).

The llava-hf side follows transformers' own converter (`models/llava/convert_llava_weights_to_hf.py`): `<image>`
and `<pad>` are added to the tokenizer, the embeddings resized to a multiple of 64 (new rows at the mean of the
others), `image_token_index` and the pad id set, `vision_feature_layer` / `vision_feature_select_strategy` taken from
the `mm_*` fields. The processor pads to a square when the original did (`LlavaImageProcessor`, `do_pad`) and
carries the conversation format of the family: `vicuna_v1` for LLaMA, `mistral_instruct` for Mistral.
"""

from __future__ import annotations

import json
import logging
import pickle
import re
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import (
    AddedToken,
    AutoConfig,
    AutoImageProcessor,
    AutoTokenizer,
    CLIPVisionModel,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
)

from llava_adapt.errors import InputError
from llava_adapt.model.aspect import set_image_aspect_ratio
from llava_adapt.model.chat_template import CHAT_FORMATS, IMAGE_TOKEN
from llava_adapt.model.components import assembled_vocab_size
from llava_adapt.run.atomic import atomic_path, write_json

log = logging.getLogger("llava_adapt")

ARCHITECTURES = {"LlavaLlamaForCausalLM": "llama", "LlavaMistralForCausalLM": "mistral"}
MODEL_TYPES = {"llava": "llama", "llava_llama": "llama", "llava_mistral": "mistral"}
FORMATS = {"llama": "vicuna_v1", "mistral": "mistral_instruct"}
CONVERSION_FILE = "llava_conversion.json"  # written into a converted folder: where it came from
VISION_PREFIX = "model.vision_tower.vision_tower."
PROJECTOR_KEYS = {"0": "linear_1", "2": "linear_2"}


class ConversionError(InputError, ValueError):
    """An original-format checkpoint cannot be converted (unsupported fields, missing files or weights)."""


def is_original_config(config: dict) -> bool:
    """Whether a `config.json` (as a dict) is in LLaVA's original format rather than llava-hf's.

    Told apart by the architectures and the `mm_*` fields: llava-hf configs nest a `text_config` and carry neither.
    """
    if any(arch in ARCHITECTURES for arch in config.get("architectures") or []):
        return True
    return config.get("model_type") in MODEL_TYPES and "mm_vision_tower" in config and "text_config" not in config


def local_or_hub_file(name_or_path: str, filename: str) -> Path | None:
    """`filename` inside a folder, or from a Hub repository (its cache, or a download); `None` if it has none."""
    folder = Path(name_or_path).expanduser()
    if folder.is_dir():
        path = folder / filename
        return path if path.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return Path(hf_hub_download(name_or_path, filename))
    except EntryNotFoundError:
        return None


def read_config(name_or_path: str) -> dict | None:
    """The `config.json` of a folder or Hub id as a dict, or `None` when it cannot be read."""
    try:
        path = local_or_hub_file(name_or_path, "config.json")
    except Exception:  # offline, unknown repository, no access: the caller's loader reports it
        return None
    return json.loads(path.read_text(encoding="utf-8")) if path else None


def _snapshot(name_or_path: str) -> Path:
    folder = Path(name_or_path).expanduser()
    if folder.is_dir():
        return folder
    from huggingface_hub import snapshot_download

    try:
        return Path(
            snapshot_download(name_or_path, allow_patterns=["*.json", "*.safetensors", "*.bin", "*.model", "*.txt"])
        )
    except Exception as exc:
        raise ConversionError(
            f"cannot fetch {name_or_path!r} ({type(exc).__name__}: {exc}); give a local folder"
        ) from None


def load_weights(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint folder: `*.safetensors` files, else `pytorch_model*.bin` read with
    `torch.load(weights_only=True)`.

    Raises:
        ConversionError: the folder holds neither.
    """
    files = sorted(folder.glob("*.safetensors"))
    if files:
        state: dict[str, torch.Tensor] = {}
        for file in files:
            state.update(load_file(str(file)))
        return state
    files = sorted(folder.glob("pytorch_model*.bin")) or sorted(folder.glob("*.bin"))
    if not files:
        raise ConversionError(f"{folder} has no *.safetensors and no pytorch_model*.bin weights")
    state = {}
    for file in files:
        try:
            state.update(torch.load(file, map_location="cpu", weights_only=True))
        except pickle.UnpicklingError as exc:  # weights_only refuses pickled code: say so in one line
            first = str(exc).strip().splitlines()[0]
            raise ConversionError(f"{file} holds more than tensors and is not loaded ({first})") from None
    return state


def projector_state(state: dict[str, torch.Tensor], where: str) -> dict[str, torch.Tensor]:
    """LLaVA's `mm_projector.{0,2}.{weight,bias}` as llava-hf's `linear_{1,2}` (keys relative to the projector).

    Args:
        state (`dict[str, torch.Tensor]`): a checkpoint's tensors (keys `model.mm_projector.*` or `mm_projector.*`).
        where (`str`): what the tensors came from, for errors.

    Raises:
        ConversionError: no projector tensors, or a projector other than LLaVA-1.5's 2-layer GELU MLP.
    """
    out = {}
    for key, tensor in state.items():
        match = re.fullmatch(r"(?:model\.)?mm_projector\.(\d+)\.(weight|bias)", key)
        if match is None:
            continue
        if match.group(1) not in PROJECTOR_KEYS:
            raise ConversionError(
                f"{where}: projector layer {match.group(1)} is not LLaVA-1.5's mlp2x_gelu (layers 0 and 2); "
                "llava-hf's LlavaForConditionalGeneration has a 2-layer GELU MLP only"
            )
        out[f"{PROJECTOR_KEYS[match.group(1)]}.{match.group(2)}"] = tensor
    if set(out) != {"linear_1.weight", "linear_1.bias", "linear_2.weight", "linear_2.bias"}:
        raise ConversionError(f"{where}: no complete mlp2x_gelu projector (found {sorted(out) or 'none'})")
    return out


def _text_config(config: dict, family: str):
    """The language model's config: the original config's fields that the family's config class knows."""
    known = AutoConfig.for_model(family).to_dict()
    fields = {k: v for k, v in config.items() if k in known and k not in ("model_type", "architectures")}
    return AutoConfig.for_model(family, **fields)


def original_family(config: dict) -> str:
    """The language-model family (`llama`, `mistral`) of an original-format `config.json`."""
    family = next((ARCHITECTURES[a] for a in config.get("architectures") or [] if a in ARCHITECTURES), None)
    return family or MODEL_TYPES[config["model_type"]]


def original_llava_config(config: dict, vision_config, image_token_index: int | None = None) -> LlavaConfig:
    """The llava-hf `LlavaConfig` of an original-format `config.json` (before the `<image>` / `<pad>` rows are added:
    the text config keeps the original vocabulary size and no pad id).

    Args:
        config (`dict`): the original `config.json`.
        vision_config (`PretrainedConfig`): the CLIP tower's vision config (`mm_vision_tower`'s).
        image_token_index (`int`, *optional*): the id of `<image>`; defaults to the original vocabulary size (the
            first added token, as llava-hf's converted LLaVA-1.5).
    """
    text_config = _text_config(config, original_family(config))
    text_config.pad_token_id = None  # set once the embeddings have the added rows
    strategy = "default" if config.get("mm_vision_select_feature", "patch") == "patch" else "full"
    grid = vision_config.image_size // vision_config.patch_size
    return LlavaConfig(
        vision_config=vision_config,
        text_config=text_config,
        image_token_index=text_config.vocab_size if image_token_index is None else image_token_index,
        image_seq_length=grid * grid + (strategy == "full"),
        vision_feature_select_strategy=strategy,
        vision_feature_layer=config.get("mm_vision_select_layer", -2),
        projector_hidden_act="gelu",
        multimodal_projector_bias=True,
    )


def _check_fields(config: dict, where: str) -> None:
    projector = config.get("mm_projector_type", "linear")
    if projector != "mlp2x_gelu":
        raise ConversionError(
            f"{where}: mm_projector_type {projector!r} is not supported; llava-hf's LlavaForConditionalGeneration "
            "has LLaVA-1.5's 2-layer GELU MLP (mlp2x_gelu) only"
        )
    if config.get("mm_use_im_start_end") or config.get("mm_use_im_patch_token"):
        raise ConversionError(
            f"{where}: mm_use_im_start_end / mm_use_im_patch_token (LLaVA v0's image delimiter tokens) are not "
            "supported; LLaVA-1.5 and LLaVA-Med v1.5 have them off"
        )
    if config.get("mm_vision_select_feature", "patch") not in ("patch", "cls_patch"):
        raise ConversionError(f"{where}: mm_vision_select_feature {config['mm_vision_select_feature']!r} unknown")


def convert_original(
    source: str, out: Path, vision_tower: str | None = None, dtype: torch.dtype = torch.float32
) -> Path:
    """Convert an original-format LLaVA checkpoint into a llava-hf folder that stock `AutoModelForImageTextToText`
    and `AutoProcessor` load.

    Args:
        source (`str`): the checkpoint: a folder or a Hub id (e.g. `microsoft/llava-med-v1.5-mistral-7b`).
        out (`Path`): the folder to write (atomically: it appears complete or not at all).
        vision_tower (`str`, *optional*): the CLIP tower (a folder or Hub id) whose config, image processor and,
            when the checkpoint has no tower weights, weights are used; defaults to the config's `mm_vision_tower`.
        dtype (`torch.dtype`, defaults to `torch.float32`): dtype of the written weights.

    Returns:
        `out`.

    Raises:
        ConversionError: not an original-format checkpoint, or fields or weights this conversion cannot carry.
    """
    folder = _snapshot(source)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ConversionError(f"{source}: no config.json")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if not is_original_config(config):
        raise ConversionError(f"{source}: config.json is not LLaVA's original format (no Llava*ForCausalLM / mm_*)")
    _check_fields(config, source)
    family = original_family(config)
    tower = vision_tower or config.get("mm_vision_tower")
    if not tower:
        raise ConversionError(f"{source}: config.json names no mm_vision_tower; pass --vision-tower")

    state = load_weights(folder)
    try:
        vision_config = AutoConfig.from_pretrained(tower)
    except OSError as exc:  # not a folder, not reachable, no config.json: transformers' own message says which
        raise ConversionError(f"cannot load the vision tower {tower!r}: {exc}; pass --vision-tower") from None
    vision_config = getattr(vision_config, "vision_config", vision_config)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    except (OSError, ValueError) as exc:
        raise ConversionError(f"{source}: cannot load its tokenizer: {exc}") from None
    # llava-hf's order: <image> = 32000, then <pad> = 32001 for the LLaMA vocabulary
    tokenizer.add_tokens([AddedToken(IMAGE_TOKEN, special=True, normalized=False)], special_tokens=True)
    if tokenizer.pad_token is None:
        tokenizer.add_special_tokens({"pad_token": "<pad>"})

    llava_config = original_llava_config(config, vision_config, tokenizer.convert_tokens_to_ids(IMAGE_TOKEN))
    text_config = llava_config.text_config
    strategy = llava_config.vision_feature_select_strategy
    with torch.device("meta"):
        model = LlavaForConditionalGeneration(llava_config)
    language = {k.removeprefix("model."): v for k, v in state.items() if k.startswith(("model.embed_tokens.",
                "model.layers.", "model.norm."))}  # fmt: skip
    if "model.embed_tokens.weight" not in state or "lm_head.weight" not in state:
        raise ConversionError(f"{source}: the weights have no model.embed_tokens / lm_head (a projector-only file?)")
    model.model.language_model.load_state_dict(language, strict=True, assign=True)
    model.lm_head.load_state_dict({"weight": state["lm_head.weight"]}, strict=True, assign=True)
    model.model.multi_modal_projector.load_state_dict(projector_state(state, source), strict=True, assign=True)
    vision_state = {k.removeprefix(VISION_PREFIX): v for k, v in state.items() if k.startswith(VISION_PREFIX)}
    if vision_state:
        vision_state = {k: v for k, v in vision_state.items() if not k.endswith("position_ids")}
        model.model.vision_tower.load_state_dict(vision_state, strict=False, assign=True)
        missing = [n for n, p in model.model.vision_tower.named_parameters() if p.is_meta]
        if missing:
            raise ConversionError(f"{source}: the stored vision tower lacks {missing[:3]}")
    else:
        model.model.vision_tower = CLIPVisionModel.from_pretrained(tower, config=vision_config, dtype=torch.float32)
    _materialise_buffers(model)
    model.to(dtype)
    rows = assembled_vocab_size(text_config.vocab_size, len(tokenizer))
    model.resize_token_embeddings(rows, mean_resizing=True)
    model.config.text_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id

    processor = LlavaProcessor(
        image_processor=AutoImageProcessor.from_pretrained(tower),
        tokenizer=tokenizer,
        patch_size=vision_config.patch_size,
        vision_feature_select_strategy=strategy,
        num_additional_image_tokens=1,  # CLIP's CLS token
        image_token=IMAGE_TOKEN,
        chat_template=CHAT_FORMATS[FORMATS[family]].template,
    )
    set_image_aspect_ratio(processor, "pad" if config.get("image_aspect_ratio") == "pad" else "crop")
    with atomic_path(out) as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        write_json(
            tmp / CONVERSION_FILE,
            {"source": source, "architecture": (config.get("architectures") or [config["model_type"]])[0],
             "family": family, "vision_tower": tower, "chat_template": FORMATS[family],
             "image_aspect_ratio": config.get("image_aspect_ratio")},
        )  # fmt: skip
    log.info("converted %s (%s) into %s", source, family, out)
    return out


def _materialise_buffers(model: torch.nn.Module) -> None:
    """Rebuild the buffers a meta-device construction left empty: rotary embeddings (their frequencies are computed
    from the config when built) and CLIP's position ids."""
    for name, module in list(model.named_modules()):
        if not any(buffer.is_meta for buffer in module.buffers(recurse=False)):
            continue
        if hasattr(module, "inv_freq") and hasattr(module, "config"):
            parent, _, attribute = name.rpartition(".")
            setattr(model.get_submodule(parent), attribute, type(module)(module.config))
        elif isinstance(getattr(module, "position_ids", None), torch.Tensor):
            length = module.position_ids.shape[-1]
            module.register_buffer("position_ids", torch.arange(length).expand((1, -1)), persistent=False)
        else:
            raise ConversionError(f"cannot rebuild the buffers of {name} ({type(module).__name__})")


def load_projector(source: str) -> dict[str, torch.Tensor]:
    """A released stage-1 projector (LLaVA's `mm_projector.bin`, or a folder / Hub repo holding it) as llava-hf
    projector weights (`linear_1.*`, `linear_2.*`).

    Raises:
        ConversionError: no `mm_projector.bin` / `*.safetensors`, or not an mlp2x_gelu projector.
    """
    path = Path(source).expanduser()
    if path.is_file():
        file = path
    else:
        file = None
        for name in ("mm_projector.bin", "mm_projector.safetensors"):
            try:
                file = local_or_hub_file(source, name)
            except Exception as exc:
                raise ConversionError(f"cannot fetch {source!r} ({type(exc).__name__}); give a local file") from None
            if file:
                break
        if file is None:
            raise ConversionError(f"{source}: no mm_projector.bin (LLaVA's stage-1 projector file)")
    state = load_file(str(file)) if file.suffix == ".safetensors" else torch.load(file, map_location="cpu",
                                                                                   weights_only=True)  # fmt: skip
    return projector_state(state, str(file))
