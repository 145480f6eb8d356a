"""What `align` and `instruct` share: tokenize (cached), count drops, train with resume, keep the loss history."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState
from peft import PeftConfig
from transformers import PreTrainedModel, ProcessorMixin

from llava_adapt.model.modules import part_of
from llava_adapt.run.atomic import write_json
from llava_adapt.run.checkpoints import last_checkpoint
from llava_adapt.train.collator import LlavaCollator
from llava_adapt.train.config import TrainerSettings
from llava_adapt.train.dataset import DatasetStats, cached_dataset, fingerprint, tokenize_samples
from llava_adapt.train.examples import SampleTokenizer
from llava_adapt.train.features import FeatureCache, build_feature_cache, cached_vision_tower, unsupported_reason
from llava_adapt.train.formats import TrainingSample
from llava_adapt.train.tracking import TrackingConfig, stage_tracker
from llava_adapt.train.trainer import LlavaSFTTrainer, sft_config


@dataclass
class TrainingResult:
    """What training one stage did, for the stage to record in its manifest entry.

    Args:
        trainer (`LlavaSFTTrainer`): the trainer after training (its `model` is the trained, possibly PEFT-wrapped,
            model).
        kept (`int`): samples trained on.
        skipped (`dict[str, int]`): samples dropped, by reason.
        info (`dict[str, Any]`): JSON-serialisable facts: `truncated`, `max_tokens`, `trainable_parameters`,
            `train_loss`, `global_step`, `vision_feature_cache`, and `resumed_from` after a resume.
    """

    trainer: LlavaSFTTrainer
    kept: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


def dataset_counts(stats: DatasetStats) -> tuple[int, dict[str, int], dict[str, Any]]:
    """What a stage records about its tokenized dataset: samples kept, dropped by reason, and facts."""
    return stats.kept, dict(stats.dropped), {"truncated": stats.truncated, "max_tokens": stats.max_tokens}


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
    model: PreTrainedModel,
    processor: ProcessorMixin,
    dataset,
    settings: TrainerSettings,
    folder: Path,
    info: dict[str, Any],
    label: str = "training",
    log: logging.Logger | None = None,
) -> FeatureCache | None:
    """The vision feature cache of a stage (filled for its images), or `None` when it is off or cannot be used.

    Args:
        folder (`Path`): where the cache lives (shared by the stages of a run).
        info (`dict[str, Any]`): receives `vision_feature_cache`: the folder, or why the cache is off.
        label (`str`, defaults to `"training"`): how to name the stage in the log.
        log (`logging.Logger`, *optional*): where to say why the cache is off.
    """
    if not settings.cache_vision_features:
        return None
    reason = unsupported_reason(model)
    if reason is not None:
        (log or logging.getLogger("llava_adapt")).info("%s: vision features computed every step (%s)", label, reason)
        info["vision_feature_cache"] = f"off: {reason}"
        return None
    images = (path for batch in dataset.select_columns(["image_path"]).iter(batch_size=10_000)
              for path in batch["image_path"])  # fmt: skip
    cache = build_feature_cache(model, processor, images, folder)
    info["vision_feature_cache"] = str(cache.folder) if cache else "off: not enough disk space"
    return cache


def train_stage(
    model: PreTrainedModel,
    processor: ProcessorMixin,
    samples: Callable[[], Iterable[TrainingSample]],
    settings: TrainerSettings,
    stage_dir: Path,
    *,
    data_key: Iterable[object],
    stage: str,
    run_dir: Path,
    seed: int,
    tracking: TrackingConfig,
    feature_cache_dir: Path,
    resume: bool = False,
    without_align: bool = False,
    peft_config: PeftConfig | None = None,
    projector_lr: float | None = None,
    log: logging.Logger | None = None,
) -> TrainingResult:
    """Tokenize a stage's samples and train; resume from the last complete checkpoint when `resume`.

    Args:
        model (`PreTrainedModel`): the model, with the stage's parameters already trainable (or frozen for PEFT).
        processor (`ProcessorMixin`): its processor.
        samples (`Callable[[], Iterable[TrainingSample]]`): produces the samples (called only on a cache miss).
        settings (`TrainerSettings`): the stage's recipe section.
        stage_dir (`Path`): the stage's folder; `checkpoints/` and `dataset/` go inside.
        data_key (`Iterable[object]`): what identifies the input data (files are hashed by content).
        stage (`str`): the stage's name (`align`, `instruct`, `finetune`): its tracking sub-run and log label.
        run_dir (`Path`): the run directory (the tracking run's default name and folder).
        seed (`int`): the recipe's seed.
        tracking (`TrackingConfig`): the recipe's `tracking:` section.
        feature_cache_dir (`Path`): where the vision feature cache lives (`settings.cache_vision_features`).
        resume (`bool`, defaults to `False`): continue from the last complete checkpoint in `stage_dir`.
        without_align (`bool`, defaults to `False`): this is the stage's "no stage 1" ablation training.
        peft_config (`PeftConfig`, *optional*): LoRA configuration; the trainer wraps the model.
        projector_lr (`float`, *optional*): the projector's own learning rate.
        log (`logging.Logger`, *optional*): where to report progress; defaults to the `llava_adapt` logger.

    Returns:
        A `TrainingResult`: the trainer after training and the counts and facts for the stage's manifest entry.

    Metrics go where the recipe's `tracking:` section says (`llava_adapt.train.tracking`).

    Raises:
        TrainingDataError: more samples than `settings.max_dropped_fraction` are dropped (its `stats` say how many).
        TrackingError: a tracking backend's package is not installed.
    """
    log = log or logging.getLogger("llava_adapt")
    label = f"{stage} (without align)" if without_align else stage
    set_cpu_threads()
    tracker = stage_tracker(tracking, run_dir, stage, without_align=without_align)
    tokenizer = SampleTokenizer(processor, settings.max_length)
    key = fingerprint(
        *data_key, settings.max_length, settings.max_dropped_fraction, tokenizer.image_tokens,
        processor.chat_template, processor.tokenizer.get_vocab(),
    )  # fmt: skip
    with PartialState().main_process_first():  # one process tokenizes and caches, the others load the cache
        dataset, stats = cached_dataset(
            stage_dir / "dataset",
            key,
            lambda out: tokenize_samples(
                samples, tokenizer, settings.max_dropped_fraction, out, settings.dataset_num_proc
            ),
        )
    kept, skipped, info = dataset_counts(stats)
    features = feature_cache(model, processor, dataset, settings, feature_cache_dir, info, label, log)
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
            args=sft_config(settings, stage_dir / "checkpoints", seed, tracker),
            data_collator=collator,
            train_dataset=dataset,
            processing_class=processor,
            peft_config=peft_config,
            projector_lr=projector_lr,
            labelled_logits_only=settings.labelled_logits_only,
        )
        wrap_present_layers(trainer)
        info["trainable_parameters"] = trainable_parameters(trainer.model)
        checkpoint = last_checkpoint(stage_dir / "checkpoints") if resume else None
        if checkpoint is not None:
            log.info("%s: resuming from %s", label, checkpoint)
            info["resumed_from"] = checkpoint.name
        result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    info["train_loss"] = result.training_loss
    info["global_step"] = trainer.state.global_step
    if trainer.is_world_process_zero():
        write_json(stage_dir / "log_history.json", trainer.state.log_history)
    return TrainingResult(trainer, kept, skipped, info)
