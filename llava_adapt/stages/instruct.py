"""Stage `instruct` (stage 2): train projector + language model on conversations; loss on assistant turns only.

Starts from `align/` when the recipe ran `align` (the projector hand-off), else from the recipe's model. Modes:
- `lora`: LoRA on every linear layer of the language model (from the module table: none in the vision tower),
  the projector (and `lm_head` with `lora.train_lm_head`) trained in full through `modules_to_save`; `instruct/`
  then holds the adapter (`adapter_config.json` + `adapter_model.safetensors`, projector included) and the
  processor; `base_model_name_or_path` points at a folder (or Hub id) that loads offline;
- `qlora`: the same on a 4-bit base (bitsandbytes, CUDA only);
- `full`: projector, language model and `lm_head` train; `instruct/` holds the whole model.
The vision tower is frozen unless `train_vision_tower: true`.

With `compare_without_align: true` (and `align` in the recipe), the same stage 2 (same data, settings and seed) is
trained a second time, from the model as it was before `align` (the checkpoint of `source: llava`, else the
assembled model saved into `instruct/base/`), into `instruct/without_align/`: LLaVA's "no stage 1" ablation, which
`evaluate` scores next to the trained model. Its manifest facts are recorded under `without_align`.

Each training writes `train_result.json` (its counts and facts) into its folder once its model is saved; a resumed
attempt skips a training that has one, so an ablation interrupted after the main training does not redo the latter.
"""

from __future__ import annotations

import gc
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import torch
from accelerate import PartialState
from peft import LoraConfig, prepare_model_for_kbit_training
from transformers import AutoConfig, BitsAndBytesConfig, PreTrainedModel

from llava_adapt.data.llava_json import read_conversations
from llava_adapt.data.paths import root_path, within
from llava_adapt.errors import LlavaAdaptError
from llava_adapt.model.carried_base import carry_base
from llava_adapt.model.load import load_model, load_pretrained, resolve_dtype
from llava_adapt.model.modules import MODULE_TABLE, lora_target_regex, module_map, set_trainable
from llava_adapt.run.atomic import atomic_path, write_json
from llava_adapt.run.layout import RunLayout
from llava_adapt.stages.context import StageContext
from llava_adapt.stages.model_source import start_model
from llava_adapt.stages.training import train_in_stage
from llava_adapt.train.config import LoraSettings
from llava_adapt.train.formats import TrainingSample, conversation_to_messages

RESULT_FILE = "train_result.json"  # written into a training's folder once its model is saved


class InstructError(LlavaAdaptError, RuntimeError):
    """Stage 2 cannot start (missing input, unavailable mode)."""


def conversation_samples(path: Path, image_root: Path) -> Iterator[TrainingSample]:
    """Stage-2 samples from a LLaVA-format file; image paths are resolved against `image_root`.

    Raises:
        RecordFileError: the file is malformed (file and line named).
        InstructError: an image path escapes `image_root`.
    """
    for where, conversation in read_conversations(path):
        image = None
        if conversation.image is not None:
            image = within(image_root, conversation.image)  # through folders linked into it, never out by `..`
            if image is None:
                raise InstructError(
                    f"{where}: image path {conversation.image!r} escapes the image folder {root_path(image_root)}"
                )
        yield TrainingSample(
            id=conversation.id, image=str(image) if image else None, messages=conversation_to_messages(conversation)
        )


def _data(ctx: StageContext) -> tuple[Path, Path]:
    """The conversations file and the folder its image paths are relative to."""
    if "generate" in ctx.recipe.stages:
        return ctx.layout.instruct_data, ctx.layout.images_dir
    return Path(ctx.recipe.data.instruct_file), Path(ctx.recipe.data.root)


def untrained_model_path(ctx: StageContext, base_dir: Path | None = None) -> str:
    """The model as it was before any training: the checkpoint of `source: llava`, else the assembled model saved
    into `base_dir` (defaults to `instruct/base/`), so that an adapter's `base_model_name_or_path` always loads
    offline."""
    recipe, layout = ctx.recipe, ctx.layout
    if recipe.model.source == "llava":
        return start_model(ctx).name_or_path
    base = base_dir or layout.instruct_dir / "base"
    with PartialState().main_process_first():
        if not (base / "config.json").is_file():
            model, processor = load_model(start_model(ctx), recipe.seed)
            with atomic_path(base) as tmp:
                model.save_pretrained(tmp)
                processor.save_pretrained(tmp)
    return str(base.resolve())


def base_model_path(ctx: StageContext, base_dir: Path | None = None) -> str:
    """Where stage 2 starts: `align/` after stage 1, else the untrained model (`untrained_model_path`, saved into
    `base_dir` when it must be saved)."""
    if "align" in ctx.recipe.stages:
        return str(ctx.layout.align_dir.resolve())
    return untrained_model_path(ctx, base_dir)


def without_align_model(layout: RunLayout, stage: str = "instruct") -> Path | None:
    """The completed "no stage 1" ablation model of a training stage (`instruct/without_align/`, or
    `finetune/without_align/` with `stage="finetune"`), or `None`."""
    folder = layout.stage_dir(stage) / "without_align"
    return folder if (folder / RESULT_FILE).is_file() else None


def quantization_config(mode: str, base: str, key: str = "instruct.mode") -> BitsAndBytesConfig | None:
    """4-bit NF4 settings for QLoRA (LLaVA's `--bits 4`), keeping the vision tower, projector and head unquantized.

    Args:
        mode (`str`): the training mode; only `"qlora"` quantizes.
        base (`str`): the model to load quantized.
        key (`str`, defaults to `"instruct.mode"`): the recipe key errors name.

    Raises:
        InstructError: no CUDA GPU or no bitsandbytes.
    """
    if mode != "qlora":
        return None
    if not torch.cuda.is_available():
        raise InstructError(f"{key} 'qlora' needs a CUDA GPU; use mode 'lora' on this machine")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise InstructError(f"{key} 'qlora' needs bitsandbytes: pip install bitsandbytes") from None
    model_type = AutoConfig.from_pretrained(base).model_type
    if model_type not in MODULE_TABLE:
        raise InstructError(f"model_type {model_type!r} is not in the module table ({sorted(MODULE_TABLE)})")
    parts = MODULE_TABLE[model_type]
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
        llm_int8_skip_modules=[parts.vision_tower, parts.projector, parts.lm_head],
    )


def restore_result(ctx: StageContext, out_dir: Path) -> bool:
    """On a resumed attempt, take the counts and facts of a training that already completed in `out_dir`."""
    if not (ctx.resume and (out_dir / RESULT_FILE).is_file()):
        return False
    result = json.loads((out_dir / RESULT_FILE).read_text(encoding="utf-8"))
    ctx.keep(result["kept"])
    for reason, n in result["skipped"].items():
        ctx.skip(reason, n)
    ctx.info.update(result["info"])
    ctx.log.info("%s: %s already trained (%s), not redoing it", ctx.name, out_dir, RESULT_FILE)
    return True


def lora_config(model: PreTrainedModel, lora: LoraSettings, train_vision_tower: bool) -> LoraConfig:
    """LLaVA's LoRA: adapters on every linear layer of the language model; the projector (and the vision tower with
    `train_vision_tower`, `lm_head` with `lora.train_lm_head`) trained in full through `modules_to_save`.

    Args:
        model (`PreTrainedModel`): the model the adapter goes on.
        lora (`LoraSettings`): the adapter's shape.
        train_vision_tower (`bool`): also train the vision tower in full.
    """
    parts = module_map(model)
    modules_to_save = [parts.projector] + [parts.vision_tower] * train_vision_tower
    modules_to_save += [parts.lm_head] * lora.train_lm_head
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora_target_regex(model),
        modules_to_save=modules_to_save,
        task_type="CAUSAL_LM",
    )


def _train(ctx: StageContext, base: str, out_dir: Path, data_file: Path, image_root: Path) -> None:
    """Train stage 2 from `base` and save the adapter or the full model, then `RESULT_FILE`, into `out_dir`."""
    recipe, cfg = ctx.recipe, ctx.recipe.instruct
    ctx.record("base_model", base)
    if restore_result(ctx, out_dir):
        return
    quantization = quantization_config(cfg.mode, base)
    dtype = torch.bfloat16 if quantization else resolve_dtype(recipe.model.dtype)
    model, processor = load_pretrained(
        base, dtype, recipe.model.attn_implementation, quantization, recipe.model.chat_template
    )
    peft_config = None
    if cfg.mode == "full":
        set_trainable(model, ["projector", "language_model", "lm_head"] + ["vision_tower"] * cfg.train_vision_tower)
    else:
        set_trainable(model, [])
        if quantization is not None:
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.activation_checkpointing)
        peft_config = lora_config(model, cfg.lora, cfg.train_vision_tower)
    trainer = train_in_stage(
        ctx,
        model,
        processor,
        lambda: conversation_samples(data_file, image_root),
        cfg,
        out_dir,
        data_key=[data_file, str(image_root.resolve()), "chat"],
        peft_config=peft_config,
        projector_lr=cfg.projector_lr,
    )
    trainer.save_model(str(out_dir))
    if trainer.is_world_process_zero():
        carry_base(out_dir)  # an adapter carries its local base (links), so the run directory can move
        write_json(out_dir / RESULT_FILE, {"kept": ctx.kept, "skipped": dict(ctx.skipped), "info": ctx.info})
    del trainer, model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run(ctx: StageContext) -> None:
    """Train stage 2 and save the adapter (LoRA/QLoRA) or the full model into `instruct/`; with
    `compare_without_align`, train it again from the model before `align` into `instruct/without_align/`."""
    recipe, layout = ctx.recipe, ctx.layout
    data_file, image_root = _data(ctx)
    if not data_file.is_file():
        raise InstructError(f"no stage-2 conversations at {data_file}")
    _train(ctx, base_model_path(ctx), layout.instruct_dir, data_file, image_root)
    if recipe.instruct.compare_without_align and "align" in recipe.stages:
        # Same function, same data, settings and seed; only the starting model and the folder differ. Its own
        # context keeps its counts and facts apart from the main training's.
        ablation = replace(ctx, name=f"{ctx.name} (without align)", kept=0, skipped=Counter(), info={})
        ctx.log.info("%s: training stage 2 again without align (compare_without_align)", ctx.name)
        _train(ablation, untrained_model_path(ctx), layout.instruct_without_align_dir, data_file, image_root)
        ctx.record("without_align", ablation.info)
