"""Where each stage writes inside a run directory. Which of these paths a stage owns is in its row of
`llava_adapt.run.stage_table`.

RUN_DIR/
  manifest.json            per-stage status, config hash, timings, counts, library versions
  recipe.yaml              the resolved recipe this run used
  data/                    <- prepare: captions.jsonl + images/ ; generate: instruct.jsonl + rejects + the sidecar
                           instruct.generate.json that marks both as generate's own
  cache/                   request cache of `generate` (kept across reruns: never pay twice)
  converted/               the recipe's original-format LLaVA checkpoint, converted once to llava-hf's layout
  tiny_base/               the built-in tiny model with its language model pretrained on the run's text
                           (`model.tiny.text_pretraining_steps`), built once
  align/                   <- align (stage 1): projector, processor, config, checkpoints
  instruct/                <- instruct (stage 2): adapter or full weights, processor, checkpoints
    base/                  the model before any training, when an adapter needs it as its base
    without_align/         the same stage 2 trained from the model before align (`instruct.compare_without_align`)
  finetune/                <- finetune (opt-in): a benchmark's train split on top of instruct/ (same adapter or full)
    data/                  train.jsonl (the samples trained on) + images/ (the benchmark's images, when it writes any)
    base/                  the model before any training, when a new adapter needs it as its base (no instruct)
    without_align/         instruct/without_align/ fine-tuned the same way, for evaluate's like-for-like ablation
  eval/<benchmark>/        <- evaluate: predictions.jsonl, metrics.json

The run's final trained model is in `finetune/` when the recipe runs `finetune`, else `instruct/`, else `align/`
(`final_model_stage`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from llava_adapt.run.stage_table import STAGES, TRAINING_STAGES, final_model_stage


@dataclass(frozen=True)
class RunLayout:
    """Paths inside one run directory."""

    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def recipe(self) -> Path:
        return self.root / "recipe.yaml"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def captions(self) -> Path:
        return self.data_dir / "captions.jsonl"

    @property
    def images_dir(self) -> Path:
        """Images that `prepare` converted (DICOM -> PNG) or synthesised; caption image paths are relative to it."""
        return self.data_dir / "images"

    @property
    def instruct_data(self) -> Path:
        return self.data_dir / "instruct.jsonl"

    @property
    def instruct_rejects(self) -> Path:
        return self.data_dir / "instruct_rejects.jsonl"

    @property
    def instruct_sidecar(self) -> Path:
        """`generate`'s record that it wrote `instruct.jsonl` and the rejects (`llava_adapt.generate.output`)."""
        return self.data_dir / "instruct.generate.json"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def converted_dir(self) -> Path:
        return self.root / "converted"

    @property
    def tiny_base_dir(self) -> Path:
        return self.root / "tiny_base"

    @property
    def align_dir(self) -> Path:
        return self.root / "align"

    @property
    def instruct_dir(self) -> Path:
        return self.root / "instruct"

    @property
    def instruct_without_align_dir(self) -> Path:
        """Stage 2 trained without stage 1 (LLaVA's "no stage 1" ablation); inside `instruct/`, so owned by it."""
        return self.instruct_dir / "without_align"

    @property
    def finetune_dir(self) -> Path:
        return self.root / "finetune"

    @property
    def finetune_data_dir(self) -> Path:
        """The samples `finetune` trains on (`train.jsonl`) and the images its benchmark loader writes."""
        return self.finetune_dir / "data"

    @property
    def finetune_without_align_dir(self) -> Path:
        """`instruct/without_align/` fine-tuned like the main model; inside `finetune/`, so owned by it."""
        return self.finetune_dir / "without_align"

    def stage_dir(self, stage: str) -> Path:
        """The folder of a training stage (`align`, `instruct` or `finetune`: its `StageSpec.model_dir`).

        Raises:
            KeyError: `stage` trains nothing.
        """
        if stage not in TRAINING_STAGES:
            raise KeyError(f"{stage!r} trains nothing; the training stages are {list(TRAINING_STAGES)}")
        return getattr(self, STAGES[stage].model_dir)

    def final_model_dir(self, stages: Sequence[str]) -> Path | None:
        """The folder that holds the run's final trained model (see `final_model_stage`), or `None`.

        Args:
            stages (`Sequence[str]`): the recipe's stages.
        """
        stage = final_model_stage(stages)
        return self.stage_dir(stage) if stage else None

    @property
    def eval_dir(self) -> Path:
        return self.root / "eval"

    def benchmark_dir(self, benchmark: str) -> Path:
        return self.eval_dir / benchmark

    def tensorboard_dir(self, stage: str) -> Path:
        """A stage's TensorBoard sub-run (`tracking.report_to: [tensorboard]`, see `llava_adapt.train.tracking`)."""
        return self.root / "tensorboard" / stage

    def owned_by(self, stage: str) -> list[Path]:
        """The paths a stage writes (its `StageSpec.owns` and TensorBoard sub-runs); they are removed before the stage
        is redone from scratch."""
        spec = STAGES[stage]
        return [getattr(self, name) for name in spec.owns] + [self.tensorboard_dir(run) for run in spec.tensorboard]
