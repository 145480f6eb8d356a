"""The `model:` section of a recipe. Imports only pydantic, so `recipe validate` stays fast."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llava_adapt.recipe.errors import KeyedError


class TinyModelConfig(BaseModel):
    """Sizes of the built-in tiny model (random init, offline tokenizer) used by `tiny` presets and tests, and the
    text pretraining of its language model."""

    model_config = ConfigDict(extra="forbid")

    image_size: int = 64  # pixels; one <image> expands to (image_size / patch_size)**2 tokens
    patch_size: int = 16
    vision_hidden_size: int = 64
    vision_layers: int = 2
    text_hidden_size: int = 128
    text_layers: int = 2
    attention_heads: int = 4
    vocab_size: int = 512  # upper bound for the offline byte-level BPE tokenizer
    # llava = LLaVA-1.5 (one 16-token image); llava_next = LLaVA-NeXT (any-resolution tiles, tokens by image size).
    # LLaVA-OneVision's processor needs torchvision's video processor, so it has no tiny variant here.
    architecture: Literal["llava", "llava_next"] = "llava"
    # Steps of next-token training of the language model alone on the run's own text (its captions and
    # conversations, no images) before stage 1, standing in for the pretrained LLM that LLaVA starts from: stage 1
    # then has words to align the images to. The tokenizer is learned from the same text. 0 = a random language
    # model and the built-in tokenizer. Done once per run, into RUN_DIR/tiny_base/.
    text_pretraining_steps: int = Field(0, ge=0)
    text_pretraining_lr: float = Field(3.0e-3, gt=0)


class ModelConfig(BaseModel):
    """Where the LLaVA model comes from.

    - `source: llava`: an existing checkpoint in llava-hf layout (`name_or_path`, a Hub id or a folder);
    - `source: components`: `vision_tower` (CLIP/SigLIP) + `language_model` (causal LM) + a new 2-layer GELU
      projector (stage 1 `align` is then essential);
    - `source: tiny`: the built-in tiny model, built offline from `tiny`.
    """

    model_config = ConfigDict(extra="forbid")

    source: Literal["llava", "components", "tiny"] = "llava"
    name_or_path: str | None = "llava-hf/llava-1.5-7b-hf"
    vision_tower: str | None = None
    language_model: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    # None = FlashAttention-2 on a CUDA GPU when flash-attn is installed (bf16/fp16 weights), else SDPA; name one to
    # choose it (`sdpa` turns FlashAttention off).
    attn_implementation: Literal["eager", "sdpa", "flash_attention_2"] | None = None
    tiny: TinyModelConfig = TinyModelConfig()
    # LLaVA-1.5's image_aspect_ratio: `pad` fills a non-square image to a square with the processor's mean colour
    # (LLaVA-1.5 / LLaVA-Med v1.5 training and eval; keeps the borders); `crop` = llava-hf's centre crop.
    image_aspect_ratio: Literal["pad", "crop"] = "pad"
    # The conversation format of stage 2 and of inference: a built-in name (`vicuna_v1` = LLaVA-1.5,
    # `mistral_instruct` = LLaVA-Med v1.5, `chatml` = Qwen2/2.5, `llama3`) or the path of a Jinja file with
    # `{% generation %}` markers. None = the checkpoint's own template when it marks assistant text, else the one
    # of the language model's family.
    chat_template: str | None = None
    # `random` builds `source: components` from the components' configs alone (config.json + tokenizer files), with
    # random weights: for shape checks, benchmarks and GPU sizing, never for a real run.
    init: Literal["pretrained", "random"] = "pretrained"

    @model_validator(mode="after")
    def _check_source(self) -> ModelConfig:
        if self.source == "llava" and not self.name_or_path:
            raise KeyedError(
                "name_or_path", "model.source 'llava' needs model.name_or_path (a llava-hf checkpoint id or folder)"
            )
        if self.source == "components" and not (self.vision_tower and self.language_model):
            raise KeyedError(
                "source", "model.source 'components' needs both model.vision_tower and model.language_model"
            )
        if self.init == "random" and self.source != "components":
            raise KeyedError("init", "model.init 'random' is only for model.source 'components'")
        return self
