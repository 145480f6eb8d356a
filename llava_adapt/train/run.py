"""What `align` and `instruct` share: tokenize (cached), count drops, train with resume, keep the loss history."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from accelerate import PartialState
from peft import PeftConfig
from transformers import PreTrainedModel, ProcessorMixin

from llava_adapt.model.modules import part_of
from llava_adapt.run.atomic import write_json
from llava_adapt.stages.context import StageContext
from llava_adapt.train.collator import LlavaCollator
from llava_adapt.train.config import TrainerSettings
from llava_adapt.train.dataset import DatasetStats, TrainingDataError, cached_dataset, fingerprint, tokenize_samples
from llava_adapt.train.examples import SampleTokenizer
from llava_adapt.train.features import FeatureCache, build_feature_cache, cached_vision_tower, unsupported_reason
from llava_adapt.train.formats import TrainingSample
from llava_adapt.train.tracking import stage_tracker
from llava_adapt.train.trainer import LlavaSFTTrainer, last_checkpoint, sft_config


def _count(ctx: StageContext, stats: DatasetStats) -> None:
    ctx.keep(stats.kept)
    for reason, n in stats.dropped.items():
        ctx.skip(reason, n)
    ctx.record("truncated", stats.truncated)
    ctx.record("max_tokens", stats.max_tokens)


def set_cpu_threads() -> None:
    """Without a GPU, share the CPU cores among the local training processes instead of oversubscribing them."""
    if not torch.cuda.is_available():
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        torch.set_num_threads(max(1, cores // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))


def trainable_parameters(model: PreTrainedModel) -> dict[str, int]:
    """Number of trainable parameters per model part (`vision_tower`, `projector`, ...; LoRA counts as its part)."""
    counts: dict[str, int] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            part = part_of(model, name) or "other"
            counts[part] = counts.get(part, 0) + param.numel()
    return counts


def uses_flash_attention(model: PreTrainedModel) -> bool:
    """Whether `model` attends with FlashAttention (2 or 3), which keeps padding-free samples apart."""
    return str(getattr(model.config, "_attn_implementation", "")).startswith("flash_attention")


def wrap_present_layers(trainer: LlavaSFTTrainer) -> None:
    """Under FSDP with the transformer-layer auto-wrap (the shipped `fsdp.yaml`), name only the layer classes the
    model contains. By default accelerate wraps the model's `_no_split_modules`, which for a LLaVA on CLIP's vision
    half include `CLIPTextEmbeddings`, a class the model does not have, and accelerate then refuses to start."""
    plugin = getattr(trainer.accelerator.state, "fsdp_plugin", None)
    if plugin is None or plugin.transformer_cls_names_to_wrap is not None:
        return
    present = {type(module).__name__ for module in trainer.model.modules()}
    plugin.transformer_cls_names_to_wrap = sorted(set(trainer.model._no_split_modules or ()) & present)


def feature_cache(
    ctx: StageContext, model: PreTrainedModel, processor: ProcessorMixin, dataset, settings: TrainerSettings
) -> FeatureCache | None:
    """The vision feature cache of a stage (filled for its images), or `None` when it is off or cannot be used."""
    if not settings.cache_vision_features:
        return None
    reason = unsupported_reason(model)
    if reason is not None:
        ctx.log.info("%s: vision features computed every step (%s)", ctx.name, reason)
        ctx.record("vision_feature_cache", f"off: {reason}")
        return None
    images = (path for batch in dataset.select_columns(["image_path"]).iter(batch_size=10_000)
              for path in batch["image_path"])  # fmt: skip
    cache = build_feature_cache(model, processor, images, ctx.layout.cache_dir / "vision_features")
    ctx.record("vision_feature_cache", str(cache.folder) if cache else "off: not enough disk space")
    return cache


def train_stage(
    ctx: StageContext,
    model: PreTrainedModel,
    processor: ProcessorMixin,
    samples: Callable[[], Iterable[TrainingSample]],
    settings: TrainerSettings,
    stage_dir: Path,
    data_key: Iterable[object],
    peft_config: PeftConfig | None = None,
    projector_lr: float | None = None,
) -> LlavaSFTTrainer:
    """Tokenize a stage's samples and train; resume from the last complete checkpoint when `ctx.resume`.

    Args:
        ctx (`StageContext`): the stage's context (counts, facts, resume flag, log).
        model (`PreTrainedModel`): the model, with the stage's parameters already trainable (or frozen for PEFT).
        processor (`ProcessorMixin`): its processor.
        samples (`Callable[[], Iterable[TrainingSample]]`): produces the samples (called only on a cache miss).
        settings (`TrainerSettings`): the stage's recipe section.
        stage_dir (`Path`): the stage's folder; `checkpoints/` and `dataset/` go inside.
        data_key (`Iterable[object]`): what identifies the input data (files are hashed by content).
        peft_config (`PeftConfig`, *optional*): LoRA configuration; the trainer wraps the model.
        projector_lr (`float`, *optional*): the projector's own learning rate.

    Returns:
        The trainer after training (its `model` is the trained, possibly PEFT-wrapped, model).

    Metrics go where the recipe's `tracking:` section says (`llava_adapt.train.tracking`).

    Raises:
        TrainingDataError: more samples than `settings.max_dropped_fraction` are dropped.
        TrackingError: a tracking backend's package is not installed.
    """
    set_cpu_threads()
    stage, _, variant = ctx.name.partition(" ")  # the ablation's context is named "<stage> (without align)"
    tracker = stage_tracker(ctx.recipe.tracking, ctx.layout.root, stage, without_align="without align" in variant)
    tokenizer = SampleTokenizer(processor, settings.max_length)
    key = fingerprint(
        *data_key, settings.max_length, settings.max_dropped_fraction, tokenizer.image_tokens,
        processor.chat_template, processor.tokenizer.get_vocab(),
    )  # fmt: skip
    try:
        with PartialState().main_process_first():  # one process tokenizes and caches, the others load the cache
            dataset, stats = cached_dataset(
                stage_dir / "dataset",
                key,
                lambda out: tokenize_samples(
                    samples, tokenizer, settings.max_dropped_fraction, out, settings.dataset_num_proc
                ),
            )
    except TrainingDataError as exc:
        _count(ctx, exc.stats)
        raise
    _count(ctx, stats)
    features = feature_cache(ctx, model, processor, dataset, settings)
    collator = LlavaCollator(
        processor,
        pad_to_multiple_of=settings.pad_to_multiple_of if torch.cuda.is_available() else None,
        features=features,
        padding_free=settings.padding_free and uses_flash_attention(model),
    )
    tower = cached_vision_tower(model, features) if features is not None else contextlib.nullcontext()
    with tracker.environment(), tower:  # transformers' integrations read some settings from the environment
        trainer = LlavaSFTTrainer(
            model=model,
            args=sft_config(settings, stage_dir / "checkpoints", ctx.recipe.seed, tracker),
            data_collator=collator,
            train_dataset=dataset,
            processing_class=processor,
            peft_config=peft_config,
            projector_lr=projector_lr,
            labelled_logits_only=settings.labelled_logits_only,
        )
        wrap_present_layers(trainer)
        ctx.record("trainable_parameters", trainable_parameters(trainer.model))
        checkpoint = last_checkpoint(stage_dir / "checkpoints") if ctx.resume else None
        if checkpoint is not None:
            ctx.log.info("%s: resuming from %s", ctx.name, checkpoint)
            ctx.record("resumed_from", checkpoint.name)
        result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    ctx.record("train_loss", result.training_loss)
    ctx.record("global_step", trainer.state.global_step)
    if trainer.is_world_process_zero():
        write_json(stage_dir / "log_history.json", trainer.state.log_history)
    return trainer
