"""Getting the model of a recipe: from a llava-hf checkpoint, from components, or the built-in tiny model.

Also the dtype rule (`auto` = bf16 on a GPU that supports it, else fp32) and the conversation format
(`prepare_chat_format`) shared by the three paths, and `load_pretrained`, which every later stage uses to reload
what an earlier one saved.
"""

from __future__ import annotations

import importlib.util
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from peft import PeftConfig, PeftModel
from transformers import (
    AutoModelForImageTextToText,
    AutoProcessor,
    BitsAndBytesConfig,
    LlavaForConditionalGeneration,
    PreTrainedModel,
    ProcessorMixin,
)

from llava_adapt.errors import LlavaAdaptError
from llava_adapt.model.aspect import set_image_aspect_ratio
from llava_adapt.model.carried_base import ADAPTER_CONFIG
from llava_adapt.model.chat_template import (
    CHAT_FORMATS,
    end_of_turn_token,
    format_for,
    has_generation_markers,
    resolve_chat_template,
)
from llava_adapt.model.components import from_components
from llava_adapt.model.config import ModelConfig
from llava_adapt.model.modules import module_map
from llava_adapt.model.tiny import build_tiny_model

log = logging.getLogger("llava_adapt")

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}  # fmt: skip
PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")


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


def attention_implementation(requested: str | None, dtype: torch.dtype) -> str | None:
    """The attention kernel to load a model with: `requested` when the recipe names one; else FlashAttention-2 on a
    CUDA GPU when flash-attn is installed and the weights are 16-bit; else `None` (transformers' default, SDPA).

    Args:
        requested (`str`, *optional*): the recipe's `model.attn_implementation`.
        dtype (`torch.dtype`): the weights' dtype (FlashAttention runs in bf16 / fp16 only).
    """
    if requested:
        return requested
    if (
        torch.cuda.is_available()
        and dtype in (torch.bfloat16, torch.float16)
        and importlib.util.find_spec("flash_attn") is not None
    ):
        return "flash_attention_2"
    return None


def closes_answers(processor: ProcessorMixin) -> bool:
    """Whether the processor's chat template marks assistant text for the loss *and* ends each marked answer with
    an end-of-turn token (`eos_token`, or one of the built-in formats' end tokens), so training teaches the model
    to stop.

    Checked by rendering a one-turn conversation, not by reading the template: llava-hf's LLaVA-1.5 template has
    `{% generation %}` markers, but its marked text is the answer and a trailing space, with no `</s>`.
    """
    template = processor.chat_template
    if not has_generation_markers(template):
        return False
    tokenizer = processor.tokenizer
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "What is shown?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]},
    ]
    try:
        encoded = tokenizer.apply_chat_template(
            messages, chat_template=template, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
    except Exception as exc:  # a template that does not render is as unusable as one without markers
        log.warning("the checkpoint's chat template does not render a conversation (%s)", exc)
        return False
    marked = [t for t, m in zip(encoded["input_ids"], encoded["assistant_masks"], strict=True) if m]
    stops = {tokenizer.eos_token_id} | {
        tokenizer.convert_tokens_to_ids(f.end_of_turn) for f in CHAT_FORMATS.values() if f.end_of_turn
    }
    return bool(marked) and marked[-1] in stops


def prepare_chat_format(model: PreTrainedModel, processor: ProcessorMixin, chat_template: str | None = None) -> None:
    """Give `processor` the conversation format to train and infer with, and make generation stop at its end token.

    The format is, in order: `chat_template` (the recipe's `model.chat_template`: a built-in name or a file); the
    checkpoint's own template when it marks answers and closes them with an end token (`closes_answers`); else the
    built-in format of the language model's family (`format_for`: LLaMA-1/2 → `vicuna_v1`, Mistral →
    `mistral_instruct`, Qwen2 → `chatml`, Llama-3 → `llama3`), with a warning when a checkpoint template is replaced.
    The tokenizer gets a pad token when it has none (`unk`, as LLaVA's v1 training; else `eos`).

    Args:
        model (`PreTrainedModel`): the LLaVA model (its `generation_config.eos_token_id` gains the end-of-turn token).
        processor (`ProcessorMixin`): its processor; `chat_template` is set in place.
        chat_template (`str`, *optional*): the recipe's `model.chat_template`.

    Raises:
        ChatTemplateError: `chat_template` names no built-in format and no usable file.
    """
    tokenizer = processor.tokenizer
    if chat_template:
        processor.chat_template = resolve_chat_template(chat_template)
    elif not closes_answers(processor):
        text_config = getattr(model.config, "text_config", model.config)
        chat_format = format_for(getattr(text_config, "model_type", None), tokenizer.get_vocab())
        if processor.chat_template:
            log.warning(
                "the checkpoint's chat template does not mark answers with their end token for the loss; "
                "training and inference use the %s format instead (set model.chat_template to choose another)",
                chat_format.name,
            )
        processor.chat_template = chat_format.template
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token  # LLaVA v1 pads with unk
    stop = end_of_turn_token(processor.chat_template, tokenizer.eos_token)
    if stop is not None and stop != tokenizer.eos_token:
        stop_id = tokenizer.convert_tokens_to_ids(stop)
        eos = model.generation_config.eos_token_id
        eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
        if stop_id not in eos:
            model.generation_config.eos_token_id = [*eos, stop_id]


def load_weights(
    path: str,
    dtype: torch.dtype | str = torch.float32,
    attn_implementation: str | None = None,
    quantization_config: BitsAndBytesConfig | None = None,
) -> LlavaForConditionalGeneration:
    """Load a LLaVA model (no processor) with the stock Auto class; arguments as `load_pretrained`'s.

    Raises:
        UnsupportedModelError: the checkpoint's model type is not in the module table.
    """
    kwargs = {"dtype": dtype}
    if attn := attention_implementation(attn_implementation, dtype):
        kwargs["attn_implementation"] = attn
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
    model = AutoModelForImageTextToText.from_pretrained(path, **kwargs)
    module_map(model)
    return model


def load_pretrained(
    path: str,
    dtype: torch.dtype | str = torch.float32,
    attn_implementation: str | None = None,
    quantization_config: BitsAndBytesConfig | None = None,
    chat_template: str | None = None,
) -> tuple[LlavaForConditionalGeneration, ProcessorMixin]:
    """Load a LLaVA model and its processor with the stock Auto classes (a Hub id or a folder), with the conversation
    format of `prepare_chat_format`.

    Args:
        path (`str`): a llava-hf checkpoint, or a folder an earlier stage saved.
        dtype (`torch.dtype | str`, defaults to `torch.float32`): weights dtype (`"auto"`: the saved one).
        attn_implementation (`str`, *optional*): passed to `from_pretrained`; unset = `attention_implementation`'s
            choice (FlashAttention-2 where installed, else SDPA).
        quantization_config (`BitsAndBytesConfig`, *optional*): load quantized (QLoRA).
        chat_template (`str`, *optional*): the recipe's `model.chat_template` (a built-in name or a file).

    Raises:
        UnsupportedModelError: the checkpoint's model type is not in the module table.
    """
    model = load_weights(path, dtype, attn_implementation, quantization_config)
    processor = AutoProcessor.from_pretrained(path)
    prepare_chat_format(model, processor, chat_template)
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
            config.vision_tower,
            config.language_model,
            dtype,
            attention_implementation(config.attn_implementation, dtype),
            seed=seed,
            random_init=config.init == "random",
        )
    else:
        model, processor = load_pretrained(config.name_or_path, dtype, config.attn_implementation)
    prepare_chat_format(model, processor, config.chat_template)
    set_image_aspect_ratio(processor, config.image_aspect_ratio)
    return model, processor


class MissingBaseError(LlavaAdaptError, FileNotFoundError):
    """An adapter's base model cannot be found (the message names the adapter and what to restore)."""


def _looks_like_hub_id(reference: str) -> bool:
    if reference.startswith(("/", ".", "~")) or "\\" in reference:
        return False
    try:
        validate_repo_id(reference)
    except HFValidationError:
        return False
    return True


def adapter_base(adapter_dir: str | Path, search_root: str | Path | None = None) -> str | None:
    """Where the base model of the adapter in `adapter_dir` is; `None` when the adapter folder carries it
    (`llava_adapt.model.carried_base`).

    Else, in order: `base_model_name_or_path` when it is an existing model folder (absolute, or relative to the
    adapter folder); for a run directory that was moved, the same folder's last one or two components (`align/`,
    `instruct/base/`) under `search_root` (defaults to the adapter folder's parent, the run directory of
    `instruct/`); the reference itself when it is a Hub id.

    Raises:
        MissingBaseError: no base model is named, or the folder it names is nowhere to be found.
    """
    adapter_dir = Path(adapter_dir)
    if (adapter_dir / "config.json").is_file():
        return None
    reference = PeftConfig.from_pretrained(str(adapter_dir)).base_model_name_or_path
    if not reference:
        raise MissingBaseError(f"{adapter_dir / ADAPTER_CONFIG} names no base model (base_model_name_or_path)")
    root = Path(search_root) if search_root is not None else adapter_dir.parent
    path = Path(reference).expanduser()
    if path.is_absolute():
        candidates = [path, root / path.name, root / Path(*path.parts[-2:])]
    else:
        candidates = [adapter_dir / path, root / path]
    for candidate in candidates:
        if (candidate / "config.json").is_file():
            return str(candidate)
    if _looks_like_hub_id(reference):
        return reference
    raise MissingBaseError(
        f"the adapter's base model {reference!r} (base_model_name_or_path in {adapter_dir / ADAPTER_CONFIG}) is not "
        "a model folder; restore it or rerun the stage that trained the adapter"
    )


@contextmanager
def adapter_base_folder(adapter_dir: str | Path, search_root: str | Path | None = None) -> Iterator[str]:
    """The base model of the adapter in `adapter_dir`, as a folder or Hub id to load it from, while the context
    lasts: `adapter_base`'s answer, or, when the adapter folder carries its base, a temporary folder holding the
    base's files and the adapter folder's processor, without the adapter (transformers would apply the adapter to
    anything loaded from the adapter folder itself).

    Args:
        adapter_dir (`str | Path`): the folder holding `adapter_config.json`.
        search_root (`str | Path`, *optional*): where to look for a base folder that moved (`adapter_base`).

    Raises:
        MissingBaseError: the base model cannot be found.
    """
    base = adapter_base(adapter_dir, search_root)
    if base is not None:
        yield base
        return
    with tempfile.TemporaryDirectory(prefix="llava-adapt-base-") as folder:
        for source in Path(adapter_dir).iterdir():  # the carried base's files and the processor's
            if source.is_file() and not source.name.startswith("adapter_"):
                (Path(folder) / source.name).symlink_to(source.resolve())
        yield folder


def load_trained(
    path: str | Path,
    dtype: torch.dtype | str = "auto",
    attn_implementation: str | None = None,
    search_root: str | Path | None = None,
) -> tuple[LlavaForConditionalGeneration, ProcessorMixin]:
    """Load a trained model for inference or export: a full model, or a LoRA adapter merged into its base.

    The one loader of trained models (`evaluate`, `llava-adapt eval`, `chat`, `demo`, `export`). An adapter is
    applied with `PeftModel.from_pretrained(base, path).merge_and_unload()`; its base is the one the adapter folder
    carries, else the one `adapter_base` finds (also after the run directory was moved). The processor is the
    folder's own (its base's when the folder has none), with the conversation format of `prepare_chat_format`.

    The dtype rule: the weights load in `dtype`; `"auto"` (the default) keeps the dtype they were saved in
    (the config's `dtype`), as transformers' `dtype="auto"` does. The adapter is merged in that dtype. The evaluate
    stage and `llava-adapt eval RUN_DIR` pass the recipe's `model.dtype` through `resolve_dtype` (bf16 on a GPU that
    supports it, else fp32), so both score the same weights; `export` keeps the saved dtype unless told otherwise.

    Args:
        path (`str | Path`): a stage folder (`align/`, `instruct/`, `finetune/`, one of their checkpoints) or any
            model or adapter folder.
        dtype (`torch.dtype | str`, defaults to `"auto"`): weights dtype, or `"auto"` for the saved one.
        attn_implementation (`str`, *optional*): passed to `from_pretrained`.
        search_root (`str | Path`, *optional*): where to look for a base folder that moved (`adapter_base`).

    Raises:
        MissingBaseError: an adapter's base model cannot be found.
        UnsupportedModelError: the model type is not in the module table.
    """
    path = Path(path)
    if not (path / ADAPTER_CONFIG).is_file():
        return load_pretrained(str(path), dtype, attn_implementation)
    with adapter_base_folder(path, search_root) as base:
        model = load_weights(base, dtype, attn_implementation)
        model = PeftModel.from_pretrained(model, str(path)).merge_and_unload()
        has_processor = any((path / name).is_file() for name in PROCESSOR_FILES)
        processor = AutoProcessor.from_pretrained(str(path) if has_processor else base)
    prepare_chat_format(model, processor)
    return model, processor
