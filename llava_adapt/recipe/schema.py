"""The recipe schema: one pydantic model per YAML section, strict about unknown keys and types.

Each stage's own section lives next to the code that uses it (`llava_adapt/model/config.py`,
`llava_adapt/train/config.py`, `llava_adapt/generate/config.py`); this module assembles them and checks what only
the whole recipe can tell (stage order, stage inputs).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llava_adapt.evaluate.config import JudgeConfig
from llava_adapt.generate.config import GenerateConfig
from llava_adapt.model.config import ModelConfig
from llava_adapt.recipe.errors import KeyedError
from llava_adapt.run.stage_table import STAGE_ORDER
from llava_adapt.train.config import AlignConfig, FinetuneConfig, InstructConfig
from llava_adapt.train.tracking import TrackingConfig

StageName = Literal[STAGE_ORDER]  # one of the stage table's names


class DataConfig(BaseModel):
    """Where the image–caption records come from: one of the domain's sources and its arguments."""

    model_config = ConfigDict(extra="forbid")

    source: str  # a source name of the domain (`llava-adapt domain ls` lists them)
    root: str = "."  # the folder the source reads from; image paths may not escape it
    args: dict[str, Any] = Field(default_factory=dict)  # the source's own arguments, checked against its schema
    instruct_file: str | None = None  # ready-made stage-2 conversations (LLaVA JSON/JSONL) instead of `generate`
    # `prepare` skips a record whose caption is longer ("caption too long", counted): a runaway caption (a whole
    # article in one field) is not an image caption, and would only be cut at align's max_length
    max_caption_chars: int = Field(8000, ge=1)


class EvaluateConfig(BaseModel):
    """Which of the domain's benchmarks to run, and how to decode."""

    model_config = ConfigDict(extra="forbid")

    benchmarks: list[str] = Field(default_factory=list)
    args: dict[str, dict[str, Any]] = Field(default_factory=dict)  # per-benchmark arguments, by benchmark name
    batch_size: int = Field(16, ge=1)
    max_new_tokens: int = Field(64, ge=1)  # a benchmark that needs longer answers (free-form chat) sets its own ...
    max_new_tokens_by_benchmark: dict[str, int] = Field(default_factory=dict)  # ... which these override, by name
    temperature: float = Field(0.0, ge=0)  # 0 = greedy, reproducible
    baseline: bool = True  # also score the untrained model, for the "before" row
    judge: JudgeConfig | None = None  # a GPT-4-class judge for benchmarks that have one; None = offline metrics only
    # Combine the trained model's answers with the judge model's, on benchmarks that offer it (scienceqa: complement =
    # the judge model's answer unless it has none, requery = it re-answers where the two disagree; LLaVA's GPT-4
    # ensembles). Scored next to the model's own metrics; needs evaluate.judge (the client). None = off.
    ensemble: str | None = None

    @model_validator(mode="after")
    def _check_ensemble(self) -> EvaluateConfig:
        if self.ensemble is not None and self.judge is None:
            raise KeyedError(
                "ensemble",
                f"evaluate.ensemble {self.ensemble!r} asks a GPT-4-class model through evaluate.judge: set "
                "evaluate.judge (model, base_url, api_key_env) or remove evaluate.ensemble",
            )
        return self


class PublishConfig(BaseModel):
    """Hub publishing (opt-in: add `publish` to `stages`)."""

    model_config = ConfigDict(extra="forbid")

    repo_id: str | None = None
    private: bool = True
    merged: bool = False
    license: str | None = None


class Recipe(BaseModel):
    """A whole recipe after presets, overrides and `${...}` interpolation."""

    model_config = ConfigDict(extra="forbid")

    domain: str
    run_dir: str = "runs/${domain}"
    seed: int = 0
    stages: list[StageName] = Field(default_factory=lambda: ["prepare", "generate", "align", "instruct", "evaluate"])
    model: ModelConfig = ModelConfig()
    data: DataConfig
    generate: GenerateConfig = GenerateConfig()
    align: AlignConfig = AlignConfig()
    instruct: InstructConfig = InstructConfig()
    finetune: FinetuneConfig = FinetuneConfig()  # opt-in: add `finetune` to `stages`
    evaluate: EvaluateConfig = EvaluateConfig()
    publish: PublishConfig = PublishConfig()
    tracking: TrackingConfig = TrackingConfig()  # opt-in: report_to tensorboard | wandb | trackio | mlflow

    @model_validator(mode="after")
    def _check_stages(self) -> Recipe:
        stages = list(self.stages)
        if len(set(stages)) != len(stages):
            raise KeyedError("stages", f"stages lists a stage twice: {stages}")
        positions = [STAGE_ORDER.index(s) for s in stages]
        if positions != sorted(positions):
            expected = [s for s in STAGE_ORDER if s in stages]
            raise KeyedError(
                "stages", f"stages {stages} are in an impossible order; the curriculum runs them as {expected}"
            )
        if "generate" in stages and "prepare" not in stages:
            raise KeyedError(
                "stages", "stage 'generate' needs the captions that 'prepare' writes: add 'prepare' before it"
            )
        if "align" in stages and "prepare" not in stages:
            raise KeyedError(
                "stages", "stage 'align' trains on the captions that 'prepare' writes: add 'prepare' before it"
            )
        if "instruct" in stages and "generate" not in stages and not self.data.instruct_file:
            raise KeyedError(
                "stages", "stage 'instruct' needs conversations: add 'generate' before it or set data.instruct_file"
            )
        if "evaluate" in stages and not self.evaluate.benchmarks:
            raise KeyedError(
                "evaluate.benchmarks", "stage 'evaluate' needs at least one benchmark in evaluate.benchmarks"
            )
        if "publish" in stages and not self.publish.repo_id:
            raise KeyedError("publish.repo_id", "stage 'publish' needs publish.repo_id (OWNER/NAME)")
        if self.instruct.mode == "qlora" and self.model.source == "tiny":
            raise KeyedError(
                "instruct.mode",
                "instruct.mode 'qlora' needs bitsandbytes and a GPU; the tiny model trains with 'lora'",
            )
        if "finetune" in stages:
            self._check_finetune()
        return self

    def _check_finetune(self) -> None:
        """What the `finetune` stage needs; the benchmark and its arguments are checked against the domain."""
        cfg = self.finetune
        if not cfg.benchmark:
            raise KeyedError(
                "finetune.benchmark",
                "stage 'finetune' needs finetune.benchmark: the domain benchmark whose train split it trains on "
                "(e.g. vqa_rad)",
            )
        if (cfg.mode or "lora") == "qlora" and self.model.source == "tiny":
            raise KeyedError("finetune.mode", "finetune.mode 'qlora' needs bitsandbytes and a GPU; use 'lora'")
        if "instruct" not in self.stages:
            return
        made = "an adapter" if self.instruct.mode != "full" else "a full model"
        if cfg.mode is not None and cfg.mode != self.instruct.mode:
            raise KeyedError(
                "finetune.mode",
                f"finetune keeps training what instruct trained ({made}, instruct.mode {self.instruct.mode!r}), so "
                f"finetune.mode {cfg.mode!r} cannot apply: set finetune.mode: {self.instruct.mode} or leave it unset",
            )
        if self.instruct.mode == "full":
            return
        if cfg.lora is not None:
            raise KeyedError(
                "finetune.lora",
                "finetune keeps training instruct's adapter, whose shape is instruct.lora: remove finetune.lora",
            )
        if cfg.train_vision_tower not in (None, self.instruct.train_vision_tower):
            raise KeyedError(
                "finetune.train_vision_tower",
                "finetune keeps training instruct's adapter, which trains the vision tower only if "
                "instruct.train_vision_tower does: remove finetune.train_vision_tower",
            )
