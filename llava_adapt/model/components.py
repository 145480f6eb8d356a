"""LLaVA's own path into a model: a pretrained vision encoder + a pretrained causal LM + a new projector.

The result is a stock `LlavaForConditionalGeneration` whose projector (2-layer GELU MLP) is freshly initialised,
so stage 1 (`align`) is essential before it can see. The LM's tokenizer gains the `<image>` token (and `<pad>`
when it has no pad token), its embeddings are resized to match (`assembled_vocab_size`), and the processor gets the
conversation format of the LM's family (`format_for`: LLaMA-1/2 → `vicuna_v1`, Mistral → `mistral_instruct`,
Qwen2 → `chatml`, Llama-3 → `llama3`). Both components load through the real `from_pretrained` path (a Hub id or
a local folder); with `random_init=True` only their configs (and the tokenizer) are read and the weights are
random, for shape checks and sizing without downloading weights.
"""

from __future__ import annotations

import torch
from transformers import (
    AddedToken,
    AutoConfig,
    AutoImageProcessor,
    AutoModelForCausalLM,
    AutoTokenizer,
    CLIPVisionModel,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    SiglipVisionModel,
)
from transformers.initialization import no_init_weights
from transformers.models.llava.modeling_llava import LlavaMultiModalProjector

from llava_adapt.errors import InputError
from llava_adapt.model.chat_template import IMAGE_TOKEN, format_for

# vision config model_type -> (model class, feature-select strategy, extra tokens before the patches)
# CLIP has a CLS token that LLaVA's "default" strategy drops; SigLIP has none and keeps every patch ("full").
VISION_ENCODERS: dict[str, tuple[type, str, int]] = {
    "clip_vision_model": (CLIPVisionModel, "default", 1),
    "siglip_vision_model": (SiglipVisionModel, "full", 0),
}


VOCAB_MULTIPLE = 64  # embeddings are resized to a multiple of this (tensor cores), as transformers' LLaVA converter


def assembled_vocab_size(text_vocab_size: int, tokenizer_length: int) -> int:
    """The embedding rows of an assembled model: enough for the LM's own rows and every token of the tokenizer
    (after `<image>` and, when missing, `<pad>` are added), rounded up to a multiple of `VOCAB_MULTIPLE`.

    LLaVA-1.5 (Vicuna-7B, 32,000 rows, tokenizer 32,000 + `<image>` + `<pad>`) gives 32,064, as llava-hf's checkpoints.
    Qwen2.5 (151,936 rows for a 151,665-token tokenizer) keeps its 151,936 rows: rows are never dropped.

    Args:
        text_vocab_size (`int`): the language model's `vocab_size`.
        tokenizer_length (`int`): `len(tokenizer)` with the added tokens.
    """
    rows = max(text_vocab_size, tokenizer_length)
    return -(-rows // VOCAB_MULTIPLE) * VOCAB_MULTIPLE


def tokens_to_add(tokenizer) -> dict[str, bool]:
    """Which LLaVA tokens a language model's tokenizer lacks: `{"<image>": ..., "<pad>": ...}` (True = add)."""
    return {IMAGE_TOKEN: IMAGE_TOKEN not in tokenizer.get_vocab(), "<pad>": tokenizer.pad_token is None}


class ComponentError(InputError, ValueError):
    """A component cannot be used to assemble a LLaVA model."""


def _vision_config(vision_tower: str):
    config = AutoConfig.from_pretrained(vision_tower)
    config = getattr(config, "vision_config", config)  # a full CLIP/SigLIP checkpoint: keep its vision half
    if config.model_type not in VISION_ENCODERS:
        raise ComponentError(
            f"model.vision_tower {vision_tower!r} is a {config.model_type!r}; supported vision encoders: "
            f"{sorted(VISION_ENCODERS)} (or a full CLIP/SigLIP checkpoint)"
        )
    return config


def _random_components(
    vision_cls: type, vision_config, language_model: str, tokenizer_length: int, load_kwargs: dict, seed: int
):
    """Both components from their configs with random weights: N(0, `initializer_range`) for matrices and
    embeddings, ones for norm scales, zeros for biases (the Llama / Mistral / Qwen2 initialisation), drawn once,
    with the embeddings already at the assembled vocabulary size. transformers' own path draws torch's kaiming init
    and then its own, which takes tens of seconds at 7B widths."""
    lm_config = AutoConfig.from_pretrained(language_model)
    lm_config.vocab_size = assembled_vocab_size(lm_config.vocab_size, tokenizer_length)
    with no_init_weights():
        vision = vision_cls._from_config(vision_config, **load_kwargs)
        lm = AutoModelForCausalLM.from_config(lm_config, **load_kwargs)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in (vision, lm):
            std = getattr(module.config, "initializer_range", 0.02)
            for name, param in module.named_parameters():
                if name.endswith("bias"):
                    param.zero_()
                elif param.ndim == 1 and name.endswith("weight"):
                    param.fill_(1.0)
                else:
                    param.normal_(0.0, std, generator=generator)
    if getattr(lm.config, "tie_word_embeddings", False):
        lm.tie_weights()
    return vision, lm


def from_components(
    vision_tower: str,
    language_model: str,
    dtype: torch.dtype = torch.float32,
    attn_implementation: str | None = None,
    vision_feature_layer: int = -2,
    seed: int = 0,
    random_init: bool = False,
) -> tuple[LlavaForConditionalGeneration, LlavaProcessor]:
    """Assemble a LLaVA model from a vision encoder and a causal LM.

    Args:
        vision_tower (`str`): Hub id or folder of a CLIP or SigLIP model (vision-only or full), with its image
            processor config.
        language_model (`str`): Hub id or folder of a causal LM with its tokenizer.
        dtype (`torch.dtype`, defaults to `torch.float32`): dtype of the loaded weights and of the new projector.
        attn_implementation (`str`, *optional*): passed to both `from_pretrained` calls (`"sdpa"`,
            `"flash_attention_2"`, ...).
        vision_feature_layer (`int`, defaults to `-2`): which vision layer feeds the projector (LLaVA: the
            penultimate).
        seed (`int`, defaults to `0`): seed of the projector's initialisation (and of every weight with
            `random_init`).
        random_init (`bool`, defaults to `False`): build both components from their configs with random weights
            (`model.init: random`); their folders need only `config.json` (+ the image processor and tokenizer).

    Returns:
        `(model, processor)`.

    Raises:
        ComponentError: the vision encoder is not CLIP/SigLIP, or the LM's tokenizer has no end-of-sequence token.
    """
    vision_config = _vision_config(vision_tower)
    vision_cls, strategy, extra_tokens = VISION_ENCODERS[vision_config.model_type]
    load_kwargs = {"dtype": dtype}
    if attn_implementation:
        load_kwargs["attn_implementation"] = attn_implementation
    tokenizer = AutoTokenizer.from_pretrained(language_model)
    if tokenizer.eos_token is None:
        raise ComponentError(f"the tokenizer of {language_model!r} has no eos_token; the chat template needs one")
    if tokenizer.pad_token is None:
        tokenizer.add_special_tokens({"pad_token": "<pad>"})
    tokenizer.add_tokens([AddedToken(IMAGE_TOKEN, special=True, normalized=False)], special_tokens=True)
    if random_init:
        vision, lm = _random_components(vision_cls, vision_config, language_model, len(tokenizer), load_kwargs, seed)
    else:
        vision = vision_cls.from_pretrained(vision_tower, config=vision_config, **load_kwargs)
        lm = AutoModelForCausalLM.from_pretrained(language_model, **load_kwargs)
    grid = vision_config.image_size // vision_config.patch_size
    config = LlavaConfig(
        vision_config=vision_config,
        text_config=lm.config,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        image_seq_length=grid * grid,
        vision_feature_select_strategy=strategy,
        vision_feature_layer=vision_feature_layer,
        projector_hidden_act="gelu",
    )
    with torch.device("meta"):
        model = LlavaForConditionalGeneration(config)
    model.model.vision_tower = vision
    model.model.language_model = lm.get_decoder()
    model.lm_head = lm.get_output_embeddings()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model.model.multi_modal_projector = LlavaMultiModalProjector(config).to(dtype)
    rows = assembled_vocab_size(lm.config.vocab_size, len(tokenizer))
    if rows != model.get_input_embeddings().weight.shape[0]:
        # new rows start at the mean of the others (transformers' mean_resizing)
        model.resize_token_embeddings(rows, mean_resizing=True)
    model.generation_config = lm.generation_config
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    if model.generation_config.eos_token_id is None:
        model.generation_config.eos_token_id = tokenizer.eos_token_id
    if model.generation_config.bos_token_id is None:
        model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.config.text_config.pad_token_id = tokenizer.pad_token_id
    processor = LlavaProcessor(
        image_processor=AutoImageProcessor.from_pretrained(vision_tower),
        tokenizer=tokenizer,
        patch_size=vision_config.patch_size,
        vision_feature_select_strategy=strategy,
        num_additional_image_tokens=extra_tokens,
        image_token=IMAGE_TOKEN,
        chat_template=format_for(lm.config.model_type, tokenizer.get_vocab()).template,
    )
    return model, processor
