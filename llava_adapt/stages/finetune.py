"""Stage `finetune` (opt-in): LLaVA-Med's downstream fine-tune on a domain benchmark's train split.

Each question of `finetune.benchmark` (loaded with `finetune.args`, `split: train` unless they say otherwise) becomes
a one-turn conversation: the user turn is the image and the question exactly as `evaluate` puts it to the model
(`format_question` with the benchmark's prompt), the assistant turn is the reference answer, and only the answer
carries loss. The samples are written to `finetune/data/train.jsonl` (the images the loader draws or converts to
`finetune/data/images/`).

Where it starts:
- after `instruct`, from what `instruct` trained: its adapter keeps training (`PeftModel.from_pretrained(...,
  is_trainable=True)`), so `finetune/` holds an adapter of the same shape over the same base
  (`base_model_name_or_path`) and loads, merges, exports and publishes exactly like `instruct/`; a full model keeps
  training in full. `finetune.mode` may only repeat `instruct.mode` (the recipe check says so);
- without `instruct` (LLaVA's `finetune_task_lora.sh`: fine-tune an existing LLaVA on your VQA data), from `align/`
  or the untrained model (saved into `finetune/base/` when an adapter needs a base that loads offline), with a new
  LoRA (`finetune.lora`) or full training per `finetune.mode` (default `lora`).

With `instruct.compare_without_align`, the "no stage 1" model `instruct/without_align/` is fine-tuned the same way
(same samples, settings and seed) into `finetune/without_align/`, so that `evaluate` compares like with like; its
manifest facts are recorded under `without_align`.

Each training writes `train_result.json` into its folder once its model is saved; a resumed attempt skips a training
that has one.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import torch
from accelerate import PartialState
from peft import PeftConfig, PeftModel, prepare_model_for_kbit_training
from transformers import AutoProcessor, PreTrainedModel, ProcessorMixin

from llava_adapt.data.jsonl import read_jsonl, write_jsonl
from llava_adapt.data.records import VQAItem
from llava_adapt.errors import LlavaAdaptError
from llava_adapt.evaluate.generation import format_question
from llava_adapt.model.carried_base import carry_base
from llava_adapt.model.load import adapter_base_folder, load_pretrained, prepare_chat_format, resolve_dtype
from llava_adapt.model.modules import set_trainable
from llava_adapt.run.atomic import write_json
from llava_adapt.stages.context import StageContext
from llava_adapt.stages.evaluate import load_items
from llava_adapt.stages.instruct import (
    RESULT_FILE,
    base_model_path,
    lora_config,
    quantization_config,
    restore_result,
    without_align_model,
)
from llava_adapt.stages.training import train_in_stage
from llava_adapt.train.config import LoraSettings
from llava_adapt.train.formats import TrainingSample

SAMPLES_FILE = "train.jsonl"  # in `finetune/data/`: the samples trained on, one JSON object per line


class FinetuneError(LlavaAdaptError, RuntimeError):
    """The fine-tune cannot start (missing input)."""


@dataclass(frozen=True)
class Start:
    """Where one fine-tune starts.

    Args:
        kind (`str`): `"adapter"` (keep training the adapter in `path`), `"full"` (keep training the full model in
            `path`) or `"new"` (a new LoRA or full training of the model at `path`).
        path (`str`): the folder (or Hub id) it loads.
        mode (`str`): `"lora"`, `"qlora"` or `"full"`.
    """

    kind: Literal["adapter", "full", "new"]
    path: str
    mode: str


def vqa_samples(items: Sequence[VQAItem], paths: Sequence[Path], prompt: str) -> list[TrainingSample]:
    """One-turn conversations from benchmark questions: user = the image and the question as `evaluate` asks it,
    assistant = the reference answer.

    Args:
        items (`Sequence[VQAItem]`): the questions.
        paths (`Sequence[Path]`): the image of each item, same order.
        prompt (`str`): the benchmark's prompt template (`Benchmark.prompt`).
    """
    samples = []
    for item, path in zip(items, paths, strict=True):
        question = [{"type": "image"}, {"type": "text", "text": format_question(item, prompt)}]
        answer = [{"type": "text", "text": item.answer}]
        messages = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        samples.append(TrainingSample(id=item.id, image=str(Path(path).resolve()), messages=messages))
    return samples


def read_samples(path: Path) -> Iterator[TrainingSample]:
    """The samples of `finetune/data/train.jsonl`."""
    for _, row in read_jsonl(path):
        yield TrainingSample(id=row["id"], image=row["image"], messages=row["messages"])


def write_samples(ctx: StageContext) -> Path:
    """Load the train split of `finetune.benchmark` and write its samples to `finetune/data/train.jsonl`.

    Items the loader skips or whose image is unusable are counted in `ctx` (`<benchmark>: <reason>`); the number of
    samples is recorded as `items`.

    Raises:
        EvaluateError: the split has no usable item.
    """
    cfg, layout = ctx.recipe.finetune, ctx.layout
    out = layout.finetune_data_dir / SAMPLES_FILE
    state = PartialState()
    if state.is_main_process:  # one process draws or converts the images; the others read what it wrote
        bench = ctx.domain.benchmarks[cfg.benchmark]
        loading = replace(ctx, kept=0, skipped=Counter(), info={})  # its kept count is not the stage's
        items, paths = load_items(
            loading, cfg.benchmark, bench, cfg.loader_args(bench.args), layout.finetune_data_dir / "images"
        )
        write_jsonl(out, (asdict(sample) for sample in vqa_samples(items, paths, bench.prompt)))
        for reason, n in loading.skipped.items():
            ctx.skip(reason, n)
        ctx.record("items", len(items))
    state.wait_for_everyone()
    return out


def starting_point(ctx: StageContext, trained: Path) -> Start:
    """Where a fine-tune starts (see the module docstring).

    Args:
        ctx (`StageContext`): the stage's context.
        trained (`Path`): what `instruct` trained (`instruct/` or `instruct/without_align/`), used when the recipe
            runs `instruct`.

    Raises:
        FinetuneError: `trained` holds neither an adapter nor a model.
    """
    recipe = ctx.recipe
    if "instruct" in recipe.stages:
        if (trained / "adapter_config.json").is_file():
            return Start("adapter", str(trained.resolve()), recipe.instruct.mode)
        if (trained / "config.json").is_file():
            return Start("full", str(trained.resolve()), "full")
        raise FinetuneError(f"{trained} holds neither an adapter nor a model; rerun instruct")
    return Start("new", base_model_path(ctx, ctx.layout.finetune_dir / "base"), recipe.finetune.mode or "lora")


def load_start(ctx: StageContext, start: Start) -> tuple[PreTrainedModel, ProcessorMixin, PeftConfig | None]:
    """Load the model a fine-tune starts from, with the parameters it trains unfrozen.

    Returns:
        `(model, processor, peft_config)`: the PEFT model with its adapter trainable and no config (`adapter`), the
        model with projector + language model + `lm_head` trainable (`full`, or `new` in full mode), or the frozen
        model and the `LoraConfig` of a new adapter (`new` in LoRA mode).
    """
    recipe, cfg = ctx.recipe, ctx.recipe.finetune
    attn = recipe.model.attn_implementation
    if start.kind == "adapter":
        # the base as the adapter folder carries it, or where it is now: a moved run's adapter_config.json names
        # the folder where the run used to be
        with adapter_base_folder(start.path, ctx.layout.root) as base:
            quantization = quantization_config(start.mode, base)
            dtype = torch.bfloat16 if quantization else resolve_dtype(recipe.model.dtype)
            model, _ = load_pretrained(base, dtype, attn, quantization, recipe.model.chat_template)
        if quantization is not None:
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.activation_checkpointing)
        model = PeftModel.from_pretrained(model, start.path, is_trainable=True)
        processor = AutoProcessor.from_pretrained(start.path)
        prepare_chat_format(model, processor, recipe.model.chat_template)
        return model, processor, None
    quantization = quantization_config(start.mode, start.path, "finetune.mode")
    dtype = torch.bfloat16 if quantization else resolve_dtype(recipe.model.dtype)
    model, processor = load_pretrained(start.path, dtype, attn, quantization, recipe.model.chat_template)
    vision = cfg.train_vision_tower
    if vision is None:
        vision = recipe.instruct.train_vision_tower if start.kind == "full" else False
    if start.mode == "full":
        set_trainable(model, ["projector", "language_model", "lm_head"] + ["vision_tower"] * vision)
        return model, processor, None
    set_trainable(model, [])
    if quantization is not None:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.activation_checkpointing)
    return model, processor, lora_config(model, cfg.lora or LoraSettings(), vision)


def _train(ctx: StageContext, start: Start, out_dir: Path, samples: Path) -> None:
    """Fine-tune from `start` on `samples` and save the adapter or the full model, then `RESULT_FILE`, into
    `out_dir`."""
    cfg = ctx.recipe.finetune
    ctx.record("starts_from", start.path)
    ctx.record("start", start.kind)  # adapter / full: keeps training what instruct trained; new: a new training
    if restore_result(ctx, out_dir):
        return
    model, processor, peft_config = load_start(ctx, start)
    learning_rate = cfg.resolved_learning_rate(start.mode)
    ctx.record("learning_rate", learning_rate)
    trainer = train_in_stage(
        ctx,
        model,
        processor,
        lambda: read_samples(samples),
        cfg.model_copy(update={"learning_rate": learning_rate}),
        out_dir,
        data_key=[samples, "vqa"],
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
    """Fine-tune the model on `finetune.benchmark`'s train split into `finetune/`; with
    `instruct.compare_without_align`, fine-tune `instruct/without_align/` the same way into
    `finetune/without_align/`."""
    recipe, layout = ctx.recipe, ctx.layout
    if not recipe.finetune.benchmark:
        raise FinetuneError("stage 'finetune' needs finetune.benchmark")
    samples = write_samples(ctx)
    # The trainings count their own samples and facts (restored as a whole on resume); the item skips stay in ctx.
    main = replace(ctx, kept=0, skipped=Counter(), info={})
    _train(main, starting_point(ctx, layout.instruct_dir), layout.finetune_dir, samples)
    ctx.keep(main.kept)
    ctx.skipped.update(main.skipped)
    ctx.info.update(main.info)
    if {"align", "instruct"} <= set(recipe.stages) and recipe.instruct.compare_without_align:
        trained = without_align_model(layout)
        if trained is None:
            raise FinetuneError(
                f"instruct.compare_without_align is set but {layout.instruct_without_align_dir} holds no finished "
                "training; rerun instruct (llava-adapt recipe run ... --force instruct)"
            )
        ablation = replace(ctx, name=f"{ctx.name} (without align)", kept=0, skipped=Counter(), info={})
        ctx.log.info("%s: fine-tuning the stage-2-only model too (compare_without_align)", ctx.name)
        _train(ablation, starting_point(ctx, trained), layout.finetune_without_align_dir, samples)
        ctx.record("without_align", ablation.info)
