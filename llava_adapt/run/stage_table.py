"""The stages of a run, in one table: every other list of stage names is derived from it.

It imports nothing, so the recipe schema, the run layout, the planner and the pipeline can all read it without
importing the stages themselves (which import torch) and without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StageSpec:
    """One stage of the curriculum.

    Args:
        name (`str`): the stage's name, as a recipe lists it in `stages`.
        module (`str`): the module whose `run(ctx: StageContext) -> None` implements it (imported only to run it).
        sections (`tuple[str, ...]`): the recipe sections its config hash covers; changing one reruns it and every
            stage after it. The `domain.*` sections are the parts of the domain the stage reads
            (`llava_adapt.run.domain_versions`).
        owns (`tuple[str, ...]`): the `RunLayout` attributes of the paths it writes; they are removed before it is
            redone from scratch.
        tensorboard (`tuple[str, ...]`, defaults to `()`): its TensorBoard sub-runs (`RunLayout.tensorboard_dir`),
            also owned by it.
        model_dir (`str`, *optional*): the `RunLayout` attribute of the folder that holds the model it trains;
            `None` for a stage that trains nothing. Training stages run on every process of a distributed launch,
            and the last one a recipe runs holds the run's final model.
    """

    name: str
    module: str
    sections: tuple[str, ...]
    owns: tuple[str, ...]
    tensorboard: tuple[str, ...] = ()
    model_dir: str | None = None

    @property
    def trains(self) -> bool:
        """Whether the stage trains a model (and so runs on every process)."""
        return self.model_dir is not None


# The curriculum, in the only order its stages can run. A recipe lists a subsequence of it.
STAGE_TABLE: tuple[StageSpec, ...] = (
    StageSpec(
        name="prepare",
        module="llava_adapt.stages.prepare",
        sections=("domain.source", "seed", "data"),
        owns=("captions", "images_dir"),
    ),
    StageSpec(
        name="generate",
        module="llava_adapt.stages.generate",
        sections=("domain.prompts", "generate"),
        owns=("instruct_data", "instruct_rejects", "instruct_sidecar"),
    ),
    StageSpec(
        name="align",
        module="llava_adapt.stages.align",
        sections=("model", "align"),
        owns=("align_dir",),
        tensorboard=("align",),
        model_dir="align_dir",
    ),
    StageSpec(
        name="instruct",
        module="llava_adapt.stages.instruct",
        sections=("instruct",),
        owns=("instruct_dir",),  # with without_align/, LLaVA's "no stage 1" ablation
        tensorboard=("instruct", "instruct_without_align"),
        model_dir="instruct_dir",
    ),
    StageSpec(
        name="finetune",
        module="llava_adapt.stages.finetune",
        # seed, model and data too: without align/instruct it starts from the model, and its benchmark reads data.root
        sections=("domain.finetune", "seed", "model", "data", "finetune"),
        owns=("finetune_dir",),
        tensorboard=("finetune", "finetune_without_align"),
        model_dir="finetune_dir",
    ),
    StageSpec(
        name="evaluate",
        module="llava_adapt.stages.evaluate",
        sections=("domain.benchmarks", "evaluate"),
        owns=("eval_dir",),
        tensorboard=("evaluate",),
    ),
    StageSpec(name="publish", module="llava_adapt.stages.publish", sections=("publish",), owns=()),
)
STAGES: dict[str, StageSpec] = {spec.name: spec for spec in STAGE_TABLE}
STAGE_ORDER: tuple[str, ...] = tuple(STAGES)
TRAINING_STAGES: tuple[str, ...] = tuple(spec.name for spec in STAGE_TABLE if spec.trains)


def final_model_stage(stages: list[str] | tuple[str, ...]) -> str | None:
    """The stage whose folder holds a run's final trained model: the last training stage the recipe runs
    (`finetune`, else `instruct`, else `align`); `None` when the run trains nothing.

    Args:
        stages (`list[str] | tuple[str, ...]`): the recipe's stages.
    """
    return next((name for name in reversed(TRAINING_STAGES) if name in stages), None)
