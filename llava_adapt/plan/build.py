"""The whole plan of a recipe, as one JSON-ready mapping (what `llava-adapt recipe plan --json` prints).

Keys: `recipe`, `preset`, `domain`, `run_dir`, `model` (where its config was read), `parameters` (`total` and one
count per part), `distributed`, `stages` (one entry per stage of the recipe, in order: `records` is what a data stage
writes or a training stage trains on; training stages add `steps`, `trainable_parameters`, `peak_memory_gb` and its
terms), `generate` (teacher requests, tokens and cost, when the recipe generates) and `units`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llava_adapt.domain import Domain
from llava_adapt.plan.configs import planned_model
from llava_adapt.plan.distributed import Distributed
from llava_adapt.plan.memory import GB, Shape, estimate_memory, shape_of
from llava_adapt.plan.parameters import ParameterCounts, count_parameters
from llava_adapt.plan.records import (
    RecordCount,
    caption_records,
    completed_stages,
    conversation_records,
    finetune_records,
    training_steps,
)
from llava_adapt.plan.setup import training_setup
from llava_adapt.plan.teacher import TOKEN_RULE, TeacherPlan, plan_teacher
from llava_adapt.recipe.loader import LoadedRecipe
from llava_adapt.recipe.schema import Recipe
from llava_adapt.run.layout import RunLayout
from llava_adapt.run.stage_table import TRAINING_STAGES


def _records(count: RecordCount) -> dict[str, Any]:
    return {"records": count.count, "records_basis": count.basis, "records_exact": count.exact}


def _trainings(recipe: Recipe, stage: str) -> int:
    """How many times the stage trains: twice with `compare_without_align` (the "no stage 1" ablation)."""
    ablation = recipe.instruct.compare_without_align and "align" in recipe.stages
    return 2 if stage in ("instruct", "finetune") and ablation and "instruct" in recipe.stages else 1


def training_entry(
    recipe: Recipe,
    stage: str,
    records: RecordCount,
    counts: ParameterCounts,
    shape: Shape,
    distributed: Distributed,
) -> dict[str, Any]:
    """The plan of one training stage: records, steps, trainable parameters and peak memory per device.

    Args:
        recipe (`Recipe`): the recipe.
        stage (`str`): `align`, `instruct` or `finetune`.
        records (`RecordCount`): the records it trains on.
        counts (`ParameterCounts`): the model's parameter counts.
        shape (`Shape`): the model's sizes.
        distributed (`Distributed`): the training processes.
    """
    setup = training_setup(recipe, stage)
    settings, world = setup.settings, distributed.num_processes
    trainable = setup.trainable(counts)
    memory = {
        on: estimate_memory(shape, counts, setup, recipe.model, distributed, checkpointing=on) for on in (True, False)
    }
    chosen = memory[settings.activation_checkpointing]
    return {
        "mode": setup.mode,
        "note": setup.note,
        **_records(records),
        "steps": training_steps(records.count, settings, world),
        "steps_per_1000_records": training_steps(1000, settings, world),
        "global_batch": settings.per_device_train_batch_size * settings.gradient_accumulation_steps * world,
        "trainings": _trainings(recipe, stage),
        "trainable_parameters": sum(trainable.values()),
        "trainable_by_part": trainable,
        "activation_checkpointing": settings.activation_checkpointing,
        "peak_memory_gb": round(chosen.total / GB, 2),
        "memory_gb": chosen.in_gb(),
        "peak_memory_gb_by_checkpointing": {
            "on": round(memory[True].total / GB, 2),
            "off": round(memory[False].total / GB, 2),
        },
        "memory_assumptions": list(chosen.assumptions),
    }


def teacher_entry(teacher: TeacherPlan) -> dict[str, Any]:
    """The `generate` entry of the plan: requests, tokens and cost."""
    return {
        "backend": teacher.backend,
        "model": teacher.model,
        "prompt_types": teacher.prompt_types,
        "captions": teacher.captions,
        "requests": teacher.requests,
        "requests_per_1000_captions": teacher.requests_per_1000_captions,
        "input_tokens": teacher.input_tokens,
        "output_tokens": teacher.output_tokens,
        "input_tokens_per_request": round(teacher.input_tokens_per_request, 1),
        "output_tokens_per_request": round(teacher.output_tokens_per_request, 1),
        "cost_usd": None if teacher.cost_usd is None else round(teacher.cost_usd, 2),
        "cost_per_1000_captions_usd": (
            None if teacher.cost_per_1000_captions_usd is None else round(teacher.cost_per_1000_captions_usd, 2)
        ),
        "user_messages_measured_on": teacher.measured_on,
    }


def build_plan(loaded: LoadedRecipe, domain: Domain, distributed: Distributed) -> dict[str, Any]:
    """Plan a run of `loaded` in its run directory, from configs and what the run directory holds.

    Args:
        loaded (`LoadedRecipe`): the validated recipe (its `run_dir` is the run directory read).
        domain (`Domain`): its domain.
        distributed (`Distributed`): the training processes.

    Raises:
        PlanError: a model config cannot be read.
    """
    recipe = loaded.recipe
    layout = RunLayout(Path(recipe.run_dir))
    model = planned_model(recipe.model)
    counts = count_parameters(model.config)
    shape = shape_of(model.config)
    done = completed_stages(recipe, domain, layout)
    captions = caption_records(recipe, domain, layout, done) if "prepare" in recipe.stages else None
    teacher = None
    if "generate" in recipe.stages:
        measured = layout.captions if "prepare" in done and layout.captions.is_file() else None
        teacher = plan_teacher(domain, recipe.generate, captions.count, measured)
    conversations = None
    if {"generate", "instruct"} & set(recipe.stages):
        types = len(teacher.prompt_types) if teacher else 0
        conversations = conversation_records(recipe, layout, done, captions, types)
    stages: dict[str, Any] = {}
    for stage in recipe.stages:
        if stage == "prepare":
            stages[stage] = _records(captions)
        elif stage == "generate":
            stages[stage] = {**_records(conversations), "requests": teacher.requests, "complete": stage in done}
        elif stage in TRAINING_STAGES:
            if stage == "align":
                data = captions
            else:
                data = conversations if stage == "instruct" else finetune_records(recipe, layout, done)
            stages[stage] = training_entry(recipe, stage, data, counts, shape, distributed)
        elif stage == "evaluate":
            stages[stage] = {"benchmarks": list(recipe.evaluate.benchmarks)}
        else:
            stages[stage] = {"repo_id": recipe.publish.repo_id}
    return {
        "recipe": str(loaded.path),
        "preset": loaded.preset,
        "domain": recipe.domain,
        "run_dir": str(layout.root),
        "model": {
            "source": recipe.model.source,
            "read_from": model.origin,
            "vocabulary": model.vocabulary or f"{shape.vocab} rows",
            "dtype": recipe.model.dtype,
            "image_tokens": shape.image_tokens,
            "vision_tokens_per_image": shape.vision_tokens,
            "text_pretraining_steps": recipe.model.tiny.text_pretraining_steps if recipe.model.source == "tiny" else 0,
        },
        "parameters": {"total": counts.total, **counts.parts},
        "distributed": {
            "kind": distributed.kind,
            "num_processes": distributed.num_processes,
            "description": distributed.describe(),
        },
        "stages": stages,
        "generate": teacher_entry(teacher) if teacher else None,
        "units": {
            "memory": "GB = 2**30 bytes per device; an estimate (formula: llava-adapt recipe plan --help)",
            "tokens": TOKEN_RULE,
        },
    }
