"""Experiment tracking: the recipe's `tracking:` section, handed to transformers' reporting integrations.

Every training stage (`align`, `instruct`, `finetune`) passes `report_to`, `run_name` and `project` to TRL's
`SFTConfig`, so the loss, learning rate and gradient norm go wherever transformers sends them; `evaluate` then sends
each benchmark's metrics through the same integrations (`log_evaluation`), under `eval/<benchmark>/<model>/<metric>`
(`<model>`: `trained`, `baseline`, `without_align`, `ensemble`). Where each backend puts them:

- `tensorboard`: one log folder per run directory, `RUN_DIR/tensorboard/`, with a sub-run per stage (`align/`,
  `instruct/`, `finetune/`, `evaluate/`; `instruct_without_align/` for LLaVA's "no stage 1" ablation, which elsewhere
  is the run `<run_name>-without-align`), removed with the stage's other outputs when it is redone from scratch:
  `tensorboard --logdir RUN_DIR/tensorboard`;
- `trackio`: one run named `run_name` in the project `project`, which every stage resumes (trackio's local store,
  `~/.cache/huggingface/trackio`; `trackio show`);
- `wandb`: the project `project` (`WANDB_PROJECT`), runs named `run_name` and grouped by it (`WANDB_RUN_GROUP`), so
  stages started by separate processes stay together; in one process the stages share one run. `WANDB_MODE=offline`
  keeps it local;
- `mlflow`: the experiment `project` (`MLFLOW_EXPERIMENT_NAME`), one run named `run_name` per stage;
  `MLFLOW_TRACKING_URI` picks the server (default: `./mlruns`).

The backends read their credentials from their own configuration (`wandb login`, `HF_TOKEN`, ...); nothing here
reads, writes or logs a secret, and what transformers logs as the run's configuration masks its own token fields.
This module imports only pydantic; transformers is imported where evaluation metrics are sent.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from llava_adapt.errors import LlavaAdaptError
from llava_adapt.run.layout import RunLayout

Backend = Literal["tensorboard", "wandb", "trackio", "mlflow", "none"]
# The package each backend needs, and how to get it.
PACKAGES = {"tensorboard": ("tensorboard", "pip install 'llava-adapt[tracking]'"),
            "wandb": ("wandb", "pip install wandb"), "trackio": ("trackio", "pip install trackio"),
            "mlflow": ("mlflow", "pip install mlflow")}  # fmt: skip


class TrackingError(LlavaAdaptError, RuntimeError):
    """A tracking backend cannot be used (its package is missing); the message says what to install."""


class TrackingConfig(BaseModel):
    """The `tracking:` section: where training and evaluation metrics are reported (off by default)."""

    model_config = ConfigDict(extra="forbid")

    report_to: list[Backend] = Field(default_factory=lambda: ["none"])  # tensorboard | wandb | trackio | mlflow
    project: str = "llava-adapt"  # the trackio / wandb project, the MLflow experiment
    run_name: str | None = None  # None = the run directory's name

    @field_validator("report_to")
    @classmethod
    def _none_alone(cls, value: list[str]) -> list[str]:
        if "none" in value and len(value) > 1:
            raise ValueError(f"report_to {value}: 'none' turns tracking off and cannot be combined with a backend")
        return list(dict.fromkeys(value)) or ["none"]


@dataclass(frozen=True)
class Tracker:
    """Where one stage reports: the backends, the run's name and project, and the stage's TensorBoard folder.

    Args:
        report_to (`list[str]`): the backends, or `["none"]`.
        project (`str`): the project (trackio, wandb) or experiment (MLflow).
        run_name (`str`): the tracked run's name.
        logging_dir (`Path`): the TensorBoard folder of this stage (`RUN_DIR/tensorboard/<stage>`).
    """

    report_to: list[str]
    project: str
    run_name: str
    logging_dir: Path

    @property
    def enabled(self) -> bool:
        """Whether any backend is on."""
        return self.report_to != ["none"]

    def training_arguments(self) -> dict[str, object]:
        """The `SFTConfig` / `TrainingArguments` fields that carry the tracking settings."""
        return {"report_to": self.report_to, "run_name": self.run_name, "project": self.project}

    @contextlib.contextmanager
    def environment(self) -> Iterator[None]:
        """Set the variables transformers' integrations read (TensorBoard folder, wandb project and group, MLflow
        experiment) while a trainer is built and runs; restore them afterwards. Variables the user set win."""
        values = {"TENSORBOARD_LOGGING_DIR": str(self.logging_dir), "WANDB_PROJECT": self.project,
                  "WANDB_RUN_GROUP": self.run_name, "MLFLOW_EXPERIMENT_NAME": self.project}  # fmt: skip
        added = {key: value for key, value in values.items() if key not in os.environ} if self.enabled else {}
        os.environ.update(added)
        try:
            yield
        finally:
            for key in added:
                os.environ.pop(key, None)


def stage_tracker(config: TrackingConfig, run_dir: str | Path, stage: str, without_align: bool = False) -> Tracker:
    """The tracker of one stage of a run.

    Args:
        config (`TrackingConfig`): the recipe's `tracking:` section.
        run_dir (`str | Path`): the run directory; its name is the default run name.
        stage (`str`): the stage (`align`, `instruct`, `finetune`, `evaluate`), the TensorBoard sub-run.
        without_align (`bool`, defaults to `False`): the stage's "no stage 1" ablation training
            (`instruct.compare_without_align`): its own sub-run `<stage>_without_align` and run
            `<run_name>-without-align`.

    Raises:
        TrackingError: a backend's package is not installed (the message says what to install).
    """
    root = Path(run_dir).resolve()
    for backend in config.report_to:
        if backend != "none" and importlib.util.find_spec(PACKAGES[backend][0]) is None:
            package, install = PACKAGES[backend]
            raise TrackingError(f"tracking.report_to lists {backend!r} but {package} is not installed: {install}")
    run_name = (config.run_name or root.name) + ("-without-align" if without_align else "")
    folder = stage + ("_without_align" if without_align else "")
    return Tracker(list(config.report_to), config.project, run_name, RunLayout(root).tensorboard_dir(folder))


def evaluation_logs(summary: Mapping[str, Mapping[str, object]]) -> dict[str, float]:
    """The evaluation metrics as flat scalars, `eval_<benchmark>/<model>/<metric>` (transformers' integrations
    report `eval_*` keys as `eval/*`).

    Args:
        summary (`Mapping[str, Mapping[str, object]]`): per benchmark, the scores by model (`metrics` = the trained
            model, `baseline`, `without_align`, `ensemble`), as the evaluate stage records them.
    """
    names = {"metrics": "trained"}
    logs: dict[str, float] = {}
    for benchmark, models in summary.items():
        for key, scores in models.items():
            if not isinstance(scores, Mapping):
                continue
            for metric, value in scores.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    logs[f"eval_{benchmark}/{names.get(key, key)}/{metric}"] = float(value)
    return logs


def log_evaluation(tracker: Tracker, logs: Mapping[str, float], step: int = 0) -> None:
    """Send evaluation metrics through the tracker's transformers integrations (the same code, names and runs as
    training), then close them.

    Args:
        tracker (`Tracker`): the evaluate stage's tracker.
        logs (`Mapping[str, float]`): flat scalars (`evaluation_logs`).
        step (`int`, defaults to `0`): the step they are logged at.
    """
    if not tracker.enabled or not logs:
        return
    from transformers import TrainerControl, TrainerState, TrainingArguments
    from transformers.integrations import get_reporting_integration_callbacks

    with tracker.environment():
        args = TrainingArguments(output_dir=str(tracker.logging_dir), use_cpu=True, **tracker.training_arguments())
        state = TrainerState(global_step=step)
        callbacks = [callback() for callback in get_reporting_integration_callbacks(tracker.report_to)]
        for callback in callbacks:
            callback.on_log(args, state, TrainerControl(), logs=dict(logs))
            callback.on_train_end(args, state, TrainerControl())
