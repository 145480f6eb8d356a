"""The model a run starts from, as the stages load it: the recipe's `model:` section, except that

- an original-format LLaVA checkpoint (LLaVA-1.5, LLaVA-Med v1.5: `Llava{Llama,Mistral}ForCausalLM`) is converted
  once into the run's `converted/` folder (`llava-adapt convert`'s conversion) and loaded from there;
- the built-in tiny model with `tiny.text_pretraining_steps` is built once into the run's `tiny_base/` folder, its
  tokenizer learned from and its language model trained on the run's own text (captions and conversations), and
  loaded from there: the stand-in for the pretrained LLM a real run starts from.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from accelerate import PartialState

from llava_adapt.data.jsonl import read_jsonl
from llava_adapt.data.llava_json import read_conversations
from llava_adapt.errors import InputError
from llava_adapt.model.config import ModelConfig
from llava_adapt.model.load import resolve_dtype
from llava_adapt.model.original import CONVERSION_FILE, convert_original, is_original_config, read_config
from llava_adapt.model.tiny import build_tiny_model
from llava_adapt.run.atomic import atomic_path, write_json
from llava_adapt.stages.context import StageContext
from llava_adapt.train.text_pretraining import pretrain_language_model

PRETRAINING_FILE = "text_pretraining.json"


def start_model(ctx: StageContext) -> ModelConfig:
    """The recipe's model section, with `name_or_path` pointing at the run's conversion when the recipe names an
    original-format checkpoint (converted on first use, by the main process; recorded as `converted_from`), or at
    the run's text-pretrained tiny model (built on first use and whenever its settings or the run's text change;
    recorded as `tiny_text_pretraining`).

    Args:
        ctx (`StageContext`): the stage's context.
    """
    config = ctx.recipe.model
    if config.source == "tiny" and config.tiny.text_pretraining_steps:
        return _text_pretrained_tiny(ctx, config)
    if config.source != "llava":
        return config
    original = read_config(config.name_or_path)
    if original is None or not is_original_config(original):
        return config
    out = ctx.layout.converted_dir
    with PartialState().main_process_first():
        if not (out / CONVERSION_FILE).is_file():
            ctx.log.info("%s: converting the original-format checkpoint %s", ctx.name, config.name_or_path)
            convert_original(config.name_or_path, out, dtype=resolve_dtype(config.dtype))
    ctx.record("converted_from", config.name_or_path)
    return config.model_copy(update={"name_or_path": str(out.resolve())})


def run_texts(ctx: StageContext) -> list[str]:
    """The run's own text, in file order: every caption of `prepare`, then every turn of the conversations stage 2
    trains on (without the `<image>` placeholder)."""
    texts = []
    if ctx.layout.captions.is_file():
        texts += [str(row.get("caption") or "") for _, row in read_jsonl(ctx.layout.captions)]
    if "generate" in ctx.recipe.stages:
        conversations = ctx.layout.instruct_data
    else:
        conversations = Path(ctx.recipe.data.instruct_file) if ctx.recipe.data.instruct_file else None
    if conversations is not None and conversations.is_file():
        for _, conversation in read_conversations(conversations):
            texts += [turn["value"].replace("<image>", "").strip() for turn in conversation.conversations]
    return [text for text in texts if text]


def _text_pretrained_tiny(ctx: StageContext, config: ModelConfig) -> ModelConfig:
    tiny, seed, out = config.tiny, ctx.recipe.seed, ctx.layout.tiny_base_dir
    texts = run_texts(ctx)
    if not texts:
        raise InputError(
            "model.tiny.text_pretraining_steps needs the run's text, and it has neither captions nor conversations: "
            "run prepare and generate first, or set model.tiny.text_pretraining_steps=0"
        )
    digest = hashlib.sha256(json.dumps([tiny.model_dump(), seed, texts]).encode()).hexdigest()
    with PartialState().main_process_first():
        marker = out / PRETRAINING_FILE
        if not marker.is_file() or json.loads(marker.read_text(encoding="utf-8")).get("sha256") != digest:
            ctx.log.info("%s: pretraining the tiny language model on %d texts of the run", ctx.name, len(texts))
            model, processor = build_tiny_model(tiny, seed, corpus=texts)
            losses = pretrain_language_model(
                model, processor.tokenizer, texts, tiny.text_pretraining_steps, tiny.text_pretraining_lr, seed
            )
            with atomic_path(out) as tmp:
                model.save_pretrained(tmp)
                processor.save_pretrained(tmp)
                write_json(tmp / PRETRAINING_FILE, {
                    "sha256": digest, "texts": len(texts), "steps": len(losses),
                    "learning_rate": tiny.text_pretraining_lr, "first_loss": losses[0], "last_loss": losses[-1],
                })  # fmt: skip
    summary = json.loads((out / PRETRAINING_FILE).read_text(encoding="utf-8"))
    ctx.record("tiny_text_pretraining", {key: summary[key] for key in ("texts", "steps", "first_loss", "last_loss")})
    return config.model_copy(update={"source": "llava", "name_or_path": str(out.resolve()), "dtype": "float32"})
