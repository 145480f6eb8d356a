"""How a training stage (`align`, `instruct`, `finetune`) calls `llava_adapt.train.run.train_stage` and records
what it reports in its manifest entry."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from peft import PeftConfig
from transformers import PreTrainedModel, ProcessorMixin

from llava_adapt.stages.context import StageContext
from llava_adapt.train.config import TrainerSettings
from llava_adapt.train.dataset import TrainingDataError
from llava_adapt.train.formats import TrainingSample
from llava_adapt.train.run import dataset_counts, train_stage
from llava_adapt.train.trainer import LlavaSFTTrainer


def _record(ctx: StageContext, kept: int, skipped: dict[str, int], info: dict) -> None:
    ctx.keep(kept)
    for reason, n in skipped.items():
        ctx.skip(reason, n)
    for key, value in info.items():
        ctx.record(key, value)


def train_in_stage(
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
    """Train with the stage's recipe, run directory and resume flag, and record the counts and facts in `ctx`
    (also when too many samples are dropped, so the manifest says how many and why).

    Args:
        ctx (`StageContext`): the stage's context; a context named `"<stage> (without align)"` trains the stage's
            "no stage 1" ablation.
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
    """
    stage, _, variant = ctx.name.partition(" ")
    try:
        result = train_stage(
            model,
            processor,
            samples,
            settings,
            stage_dir,
            data_key=data_key,
            stage=stage,
            run_dir=ctx.layout.root,
            seed=ctx.recipe.seed,
            tracking=ctx.recipe.tracking,
            feature_cache_dir=ctx.layout.cache_dir / "vision_features",
            resume=ctx.resume,
            without_align="without align" in variant,
            peft_config=peft_config,
            projector_lr=projector_lr,
            log=ctx.log,
        )
    except TrainingDataError as exc:
        _record(ctx, *dataset_counts(exc.stats))
        raise
    _record(ctx, result.kept, result.skipped, result.info)
    return result.trainer
