"""What each training stage trains, as the stages decide it (`stages/align.py`, `instruct.py`, `finetune.py`).

- `align`: the projector only;
- `instruct` with `mode: lora` / `qlora`: a LoRA adapter on every `nn.Linear` of the language model, plus the projector
  in full (and the vision tower with `train_vision_tower`, `lm_head` with `lora.train_lm_head`), through PEFT's
  `modules_to_save`; `qlora` trains the same set over a 4-bit base;
- `instruct` with `mode: full`: projector + language model + `lm_head` (+ the vision tower with `train_vision_tower`);
- `finetune`: after `instruct`, what `instruct` trained (its adapter, or the full model); without it, a new training of
  `finetune.mode` (default `lora`, shape `finetune.lora`).
"""

from __future__ import annotations

from dataclasses import dataclass

from llava_adapt.plan.parameters import ParameterCounts
from llava_adapt.recipe.schema import Recipe
from llava_adapt.run.stage_table import TRAINING_STAGES
from llava_adapt.train.config import LoraSettings, TrainerSettings


@dataclass(frozen=True)
class TrainingSetup:
    """What one training stage trains.

    Args:
        mode (`str`): `"projector"` (align), `"lora"`, `"qlora"` or `"full"`.
        full_parts (`tuple[str, ...]`): the model parts trained in full.
        settings (`TrainerSettings`): the stage's recipe section (batch size, epochs, max length, ...).
        lora (`LoraSettings`, *optional*): the adapter's shape, for `lora` and `qlora`.
        note (`str`, defaults to `""`): where the training starts, when that matters.
    """

    mode: str
    full_parts: tuple[str, ...]
    settings: TrainerSettings
    lora: LoraSettings | None = None
    note: str = ""

    def trainable(self, counts: ParameterCounts) -> dict[str, int]:
        """Trainable parameters by part (`lora` = the adapter's A and B matrices).

        Args:
            counts (`ParameterCounts`): the model's parameter counts.
        """
        trained = {part: counts.parts[part] for part in self.full_parts}
        if self.lora is not None:
            trained["lora"] = self.lora.r * counts.lora_per_rank
        return trained


def _adapter_parts(train_vision_tower: bool, lora: LoraSettings) -> tuple[str, ...]:
    return ("projector",) + ("vision_tower",) * train_vision_tower + ("lm_head",) * lora.train_lm_head


def _full_parts(train_vision_tower: bool) -> tuple[str, ...]:
    return ("projector", "language_model", "lm_head") + ("vision_tower",) * train_vision_tower


def training_setup(recipe: Recipe, stage: str) -> TrainingSetup:
    """What `stage` (`align`, `instruct` or `finetune`) of `recipe` trains.

    Args:
        recipe (`Recipe`): the validated recipe.
        stage (`str`): one of `TRAINING_STAGES`.
    """
    if stage == "align":
        return TrainingSetup("projector", ("projector",), recipe.align)
    instruct = recipe.instruct
    if stage == "instruct":
        if instruct.mode == "full":
            return TrainingSetup("full", _full_parts(instruct.train_vision_tower), instruct)
        parts = _adapter_parts(instruct.train_vision_tower, instruct.lora)
        return TrainingSetup(instruct.mode, parts, instruct, instruct.lora)
    if stage != "finetune":
        raise ValueError(f"{stage!r} trains nothing; the training stages are {list(TRAINING_STAGES)}")
    cfg = recipe.finetune
    if "instruct" in recipe.stages:
        if instruct.mode == "full":
            vision = instruct.train_vision_tower if cfg.train_vision_tower is None else cfg.train_vision_tower
            return TrainingSetup("full", _full_parts(vision), cfg, note="keeps training instruct's full model")
        parts = _adapter_parts(instruct.train_vision_tower, instruct.lora)
        return TrainingSetup(instruct.mode, parts, cfg, instruct.lora, note="keeps training instruct's adapter")
    mode, vision = cfg.mode or "lora", bool(cfg.train_vision_tower)
    if mode == "full":
        return TrainingSetup("full", _full_parts(vision), cfg)
    lora = cfg.lora or LoraSettings()
    return TrainingSetup(mode, _adapter_parts(vision, lora), cfg, lora)
