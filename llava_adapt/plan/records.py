"""How many records each stage reads, counted where that is cheap, and the optimisation steps they make.

A count comes from the run directory when the stage that writes it completed with the recipe's current config
(`data/captions.jsonl`, `data/instruct.jsonl`, `finetune/data/train.jsonl`), else from what the recipe fixes: the
source's own count (`Source.count`, e.g. a synthetic source's `n_images`), captions x prompt types x samples for the
conversations `generate` asks for, the rows of `data.instruct_file`. Otherwise it is unknown until the stage runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from llava_adapt.data.jsonl import RecordFileError, read_json_list
from llava_adapt.domain import Domain, SourceContext
from llava_adapt.recipe.schema import Recipe
from llava_adapt.run.layout import RunLayout
from llava_adapt.run.manifest import Manifest
from llava_adapt.run.pipeline import plan as pipeline_plan
from llava_adapt.train.config import TrainerSettings


@dataclass(frozen=True)
class RecordCount:
    """How many records a stage reads.

    Args:
        count (`int`, *optional*): the number; `None` when it is unknown.
        basis (`str`): where it comes from, or until when it is unknown.
        exact (`bool`, defaults to `False`): counted in a file the stage reads (not an expectation).
    """

    count: int | None
    basis: str
    exact: bool = False


def completed_stages(recipe: Recipe, domain: Domain, layout: RunLayout) -> set[str]:
    """The stages a run of `recipe` in `layout` would skip: completed with the current config."""
    try:
        manifest = Manifest.load(layout.manifest)
    except ValueError:
        return set()
    return {step.name for step in pipeline_plan(recipe, domain, manifest) if step.action == "skip"}


def count_lines(path: Path) -> int:
    """Non-empty lines of a JSON Lines file."""
    with path.open(encoding="utf-8") as lines:
        return sum(1 for line in lines if line.strip())


def count_conversations(path: Path) -> int | None:
    """Records of a LLaVA-format conversation file (JSON list, JSON Lines, Parquet); `None` if it cannot be read."""
    try:
        if path.suffix == ".jsonl":
            return count_lines(path)
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows
        return sum(1 for _ in read_json_list(path))
    except (OSError, RecordFileError):
        return None


def caption_records(recipe: Recipe, domain: Domain, layout: RunLayout, done: set[str]) -> RecordCount:
    """The image–caption records `prepare` writes (what `align` trains on and `generate` reads).

    Args:
        recipe (`Recipe`): the recipe.
        domain (`Domain`): its domain.
        layout (`RunLayout`): the run directory.
        done (`set[str]`): the stages completed with the current config (`completed_stages`).
    """
    if "prepare" in done and layout.captions.is_file():
        return RecordCount(count_lines(layout.captions), "data/captions.jsonl", exact=True)
    data = recipe.data
    source = domain.sources[data.source]
    if source.count is not None:
        ctx = SourceContext(data_root=Path(data.root).expanduser(), output_dir=layout.images_dir, seed=recipe.seed)
        count = source.count(source.args.model_validate(data.args), ctx)
        if count is not None:
            return RecordCount(count, f"source {data.source!r} as its arguments ask; prepare skips unusable ones")
    return RecordCount(None, "unknown until prepare")


def conversation_records(
    recipe: Recipe, layout: RunLayout, done: set[str], captions: RecordCount, prompt_types: int
) -> RecordCount:
    """The conversations stage 2 trains on: what `generate` writes, or `data.instruct_file`.

    Args:
        recipe (`Recipe`): the recipe.
        layout (`RunLayout`): the run directory.
        done (`set[str]`): the stages completed with the current config.
        captions (`RecordCount`): the caption records `generate` reads.
        prompt_types (`int`): how many prompt types `generate` asks for each record.
    """
    if "generate" not in recipe.stages:
        path = Path(recipe.data.instruct_file)
        count = count_conversations(path) if path.is_file() else None
        if count is None:
            return RecordCount(None, f"data.instruct_file {path} cannot be counted (missing or unreadable)")
        return RecordCount(count, "data.instruct_file", exact=True)
    if "generate" in done and layout.instruct_data.is_file():
        return RecordCount(count_lines(layout.instruct_data), "data/instruct.jsonl", exact=True)
    if captions.count is None:
        return RecordCount(None, "unknown until prepare")
    cfg = recipe.generate
    records = captions.count if cfg.limit is None else min(captions.count, cfg.limit)
    return RecordCount(
        records * prompt_types * cfg.samples_per_record,
        "captions x prompt types x samples per record; generate rejects lower it",
    )


def finetune_records(recipe: Recipe, layout: RunLayout, done: set[str]) -> RecordCount:
    """The questions the `finetune` stage trains on (its benchmark's train split)."""
    samples = layout.finetune_data_dir / "train.jsonl"
    if "finetune" in done and samples.is_file():
        return RecordCount(count_lines(samples), "finetune/data/train.jsonl", exact=True)
    return RecordCount(None, f"unknown until finetune loads {recipe.finetune.benchmark}'s train split")


def training_steps(records: int | None, settings: TrainerSettings, world_size: int) -> int | None:
    """Optimisation steps of a training stage, as transformers' Trainer counts them.

    `max_steps` when it is > 0; else ceil(records / (per_device_train_batch_size x gradient_accumulation_steps x
    world_size)) per epoch, times `num_train_epochs` (rounded up); `None` when the records are unknown.

    Args:
        records (`int`, *optional*): the records the stage trains on.
        settings (`TrainerSettings`): the stage's recipe section.
        world_size (`int`): the number of training processes.
    """
    if settings.max_steps > 0:
        return settings.max_steps
    if records is None:
        return None
    per_step = settings.per_device_train_batch_size * settings.gradient_accumulation_steps * world_size
    return math.ceil(settings.num_train_epochs * max(math.ceil(records / per_step), 1))
