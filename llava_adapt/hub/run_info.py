"""What publishing needs to know about a run directory, read once and checked.

A run can be published once the stage that holds its final model completed: `finetune` when the recipe runs it,
else `instruct` (`publishable_stage`). Its folder (`finetune/` or `instruct/`) then holds either a PEFT adapter
(`adapter_config.json` + `adapter_model.safetensors`, the projector inside it) or a full model (`config.json` +
safetensors weights), next to the processor. Only the files listed in `PUBLISHED_FILES` leave the run directory:
trainer checkpoints, `training_args.bin` (a pickle) and PEFT's own README never do.

Evaluation results come from `eval/<benchmark>/metrics.json` as the evaluate stage writes it:
`{"benchmark", "model", "num_items", "metrics": {...}, "baseline": {...}}`, with the benchmark's declarations of its
metrics (`metric_specs`, `primary_metric`: which are scores, baselines, counts or diagnostics,
`llava_adapt.evaluate.metric_spec`); a plain object of numbers is read as the metrics too. Nested scores are
flattened with `/` (e.g. `subject/NAT`); non-numbers are ignored.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from pydantic import ValidationError

from llava_adapt.evaluate.metric_spec import MetricSpec, read_specs
from llava_adapt.hub.errors import PublishError
from llava_adapt.model.carried_base import carried_files
from llava_adapt.recipe.schema import Recipe
from llava_adapt.run.layout import RunLayout
from llava_adapt.run.manifest import COMPLETE, Manifest
from llava_adapt.run.stage_table import final_model_stage

# Files of the model folder (`instruct/`, `finetune/`, or a merged export) that belong in a published repository.
PUBLISHED_FILES = (
    "adapter_config.json", "adapter_model.safetensors",
    "config.json", "generation_config.json", "model.safetensors", "model-*-of-*.safetensors",
    "model.safetensors.index.json",
    "processor_config.json", "preprocessor_config.json", "chat_template.jinja", "chat_template.json",
    "tokenizer.json", "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json", "added_tokens.json",
    "vocab.json", "merges.txt",
)  # fmt: skip

# A folder of the Hub cache: `.../models--OWNER--NAME/snapshots/<sha>`.
_HUB_CACHE_FOLDER = re.compile(r"models--(?P<id>[^/]+)/snapshots/")


def hub_id(name_or_path: str | None) -> str | None:
    """The Hub repo id behind a model reference, or `None` when it is a local path with no Hub origin.

    A folder of the Hub cache (`.../models--OWNER--NAME/snapshots/...`) gives back `OWNER/NAME`.

    Args:
        name_or_path (`str`, *optional*): a Hub id or a local folder, as written in a recipe or a PEFT config.
    """
    if not name_or_path:
        return None
    cached = _HUB_CACHE_FOLDER.search(Path(name_or_path).as_posix())
    if cached:
        return cached.group("id").replace("--", "/", 1)
    if name_or_path.startswith(("/", ".", "~")) or "\\" in name_or_path or Path(name_or_path).exists():
        return None
    try:
        validate_repo_id(name_or_path)
    except HFValidationError:
        return None
    return name_or_path


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, float]:
    flat: dict[str, float] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            flat[name] = value
    return flat


@dataclass(frozen=True)
class BenchmarkResult:
    """The scores of one benchmark.

    Args:
        name (`str`): the benchmark (its folder name under `eval/`).
        metrics (`dict[str, float]`): the trained model's scores by metric name.
        baseline (`dict[str, float]`): the untrained model's scores (empty when not measured).
        without_align (`dict[str, float]`): the scores of the same training without `align` (LLaVA's "no stage 1"
            ablation, `instruct.compare_without_align`; empty when not measured).
        ensemble (`dict[str, float]`): the scores of the trained model's answers combined with the judge model's
            (`evaluate.ensemble`; empty when not run).
        notes (`list[str]`): the benchmark's caveats about its question set (e.g. answer types guessed by a rule).
        specs (`dict[str, MetricSpec]`): what each declared metric is (`metrics.json`'s `metric_specs`); a name not
            in it is undeclared (`llava_adapt.evaluate.metric_spec.spec_of`).
        primary (`str`, *optional*): the benchmark's primary score, when it declares one.
    """

    name: str
    metrics: dict[str, float]
    baseline: dict[str, float] = field(default_factory=dict)
    without_align: dict[str, float] = field(default_factory=dict)
    ensemble: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    specs: dict[str, MetricSpec] = field(default_factory=dict)
    primary: str | None = None


def read_metrics(path: Path) -> BenchmarkResult:
    """Read one `eval/<benchmark>/metrics.json`.

    Raises:
        PublishError: the file is not a JSON object (names the file).
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise PublishError(f"{path} is not valid JSON ({exc.msg}); rerun the evaluate stage") from None
    if not isinstance(data, dict):
        raise PublishError(f"{path} is not a JSON object of metrics; rerun the evaluate stage")
    baseline = data.pop("baseline", None)
    without_align = data.pop("without_align", None)
    ensemble = data.pop("ensemble", None)
    notes = data.pop("notes", None)
    specs, primary = read_specs(data)
    data.pop("metric_specs", None)
    data.pop("primary_metric", None)
    if isinstance(data.get("metrics"), dict):
        metrics = _flatten(data["metrics"])
        if isinstance(data.get("num_items"), int):
            metrics["num_items"] = data["num_items"]
    else:
        metrics = _flatten(data)
    return BenchmarkResult(
        name=path.parent.name,
        metrics=metrics,
        baseline=_flatten(baseline) if isinstance(baseline, dict) else {},
        without_align=_flatten(without_align) if isinstance(without_align, dict) else {},
        ensemble=_flatten(ensemble) if isinstance(ensemble, dict) else {},
        notes=[str(note) for note in notes] if isinstance(notes, list) else [],
        specs=specs,
        primary=primary,
    )


@dataclass(frozen=True)
class BaseModelRef:
    """The model the run started from, as the card states it.

    Args:
        hub_id (`str`, *optional*): its Hub id; `None` when it has none (tiny model, local folder).
        description (`str`): one sentence for the card.
    """

    hub_id: str | None
    description: str


@dataclass
class RunInfo:
    """A checked run directory, ready to be turned into a model card and a file set.

    Args:
        layout (`RunLayout`): the run directory.
        recipe (`Recipe`): the recipe the run used (its `recipe.yaml`).
        manifest (`Manifest`): its manifest.
        kind (`str`): `"adapter"` (a PEFT adapter in the model folder) or `"full"` (full weights in it).
        results (`list[BenchmarkResult]`): evaluation results, by benchmark name.
    """

    layout: RunLayout
    recipe: Recipe
    manifest: Manifest
    kind: Literal["adapter", "full"]
    results: list[BenchmarkResult]

    @property
    def evaluate_status(self) -> str | None:
        """The evaluate stage's status in the manifest, `None` if it never ran."""
        entry = self.manifest.stage("evaluate")
        return entry.get("status") if entry else None

    @property
    def model_stage(self) -> str:
        """The stage whose folder holds the published model: `finetune` or `instruct` (`publishable_stage`)."""
        return publishable_stage(self.recipe.stages)

    @property
    def model_dir(self) -> Path:
        """The folder of the published model: `finetune/` or `instruct/`."""
        return self.layout.stage_dir(self.model_stage)

    def model_files(self) -> list[Path]:
        """The files of the model folder that are published, sorted by name."""
        return published_files(self.model_dir)

    @property
    def base_model(self) -> BaseModelRef:
        """The Hub base of the trained model (see module docstring of `llava_adapt.model.config`)."""
        model = self.recipe.model
        if model.source == "tiny":
            return BaseModelRef(
                None,
                "the built-in tiny LLaVA of llava-adapt (random initialisation, tokenizer built offline); it is not "
                "on the Hub, so the metadata names no `base_model`",
            )
        if model.source == "components":
            lm = hub_id(model.language_model)
            vision = hub_id(model.vision_tower) or "a local vision encoder"
            lm_text = f"[{lm}](https://huggingface.co/{lm})" if lm else "a local language model"
            return BaseModelRef(
                lm,
                f"a LLaVA model assembled by llava-adapt from the vision encoder {vision} and the language model "
                f"{lm_text}, joined by a new 2-layer GELU projector",
            )
        base = hub_id(model.name_or_path)
        if base is None:
            return BaseModelRef(
                None, "a LLaVA checkpoint loaded from a local folder with no Hub id, so the metadata names no base"
            )
        return BaseModelRef(base, f"the LLaVA checkpoint [{base}](https://huggingface.co/{base})")


def published_files(folder: Path) -> list[Path]:
    """The files directly inside `folder` that match `PUBLISHED_FILES`, sorted by name; for an adapter, not the
    base model it carries (`llava_adapt.model.carried_base`)."""
    carried = carried_files(folder)
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p not in carried and any(fnmatch.fnmatch(p.name, pat) for pat in PUBLISHED_FILES)
    )


def publishable_stage(stages: Sequence[str]) -> str:
    """The stage whose folder holds a run's publishable model: `finetune` when the recipe runs it, else `instruct`
    (a recipe that trains only `align`, or nothing, has nothing to publish: its `instruct` stage never ran).

    Args:
        stages (`Sequence[str]`): the recipe's stages.
    """
    return "finetune" if final_model_stage(stages) == "finetune" else "instruct"


def read_run(run_dir: str | Path) -> tuple[RunLayout, Manifest, Recipe]:
    """Read a run directory's manifest and recipe.

    Args:
        run_dir (`str | Path`): the run directory (`recipe.run_dir`).

    Raises:
        PublishError: the folder is not a run directory, or its manifest or recipe cannot be read.
    """
    layout = RunLayout(Path(run_dir))
    if not layout.manifest.is_file():
        raise PublishError(
            f"{layout.root} is not a llava-adapt run directory (no manifest.json); "
            "pass the run_dir of a `llava-adapt recipe run`"
        )
    try:
        manifest = Manifest.load(layout.manifest)
    except ValueError as exc:
        raise PublishError(str(exc)) from None
    try:
        recipe = Recipe.model_validate(yaml.safe_load(layout.recipe.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise PublishError(f"{layout.recipe} is missing; rerun the recipe to restore it") from None
    except (yaml.YAMLError, ValidationError) as exc:
        raise PublishError(f"{layout.recipe} is not a valid recipe: {exc}") from None
    return layout, manifest, recipe


def stage_problem(manifest: Manifest, name: str) -> str | None:
    """Why stage `name` is not complete in the manifest (`"never ran"`, its status), or `None` when it is."""
    entry = manifest.stage(name)
    if entry is None:
        return "never ran"
    if entry.get("status") != COMPLETE:
        return f"its status is {entry.get('status')!r}"
    return None


def load_run(run_dir: str | Path) -> RunInfo:
    """Read and check a run directory for publishing or export.

    Args:
        run_dir (`str | Path`): the run directory (`recipe.run_dir`).

    Raises:
        PublishError: the folder is not a run directory, the stage of its final model (`finetune` or `instruct`)
            has not completed, or what it wrote is incomplete. The message says which stage to run.
    """
    layout, manifest, recipe = read_run(run_dir)
    stage = publishable_stage(recipe.stages)
    problem = stage_problem(manifest, stage)
    if problem:
        raise PublishError(
            f"the {stage} stage of {layout.root} has not completed ({problem}); run the recipe up to '{stage}' "
            f"first: llava-adapt recipe run {layout.recipe} --run-dir {layout.root}"
        )
    folder = layout.stage_dir(stage)
    if (folder / "adapter_config.json").is_file():
        kind: Literal["adapter", "full"] = "adapter"
        if not (folder / "adapter_model.safetensors").is_file():
            raise PublishError(f"{folder} has adapter_config.json but no adapter_model.safetensors; rerun {stage}")
    elif (folder / "config.json").is_file():
        kind = "full"
        if not any(fnmatch.fnmatch(p.name, "model*.safetensors") for p in folder.iterdir()):
            raise PublishError(f"{folder} has config.json but no safetensors weights; rerun {stage}")
    else:
        raise PublishError(
            f"{folder} holds neither an adapter (adapter_config.json) nor a model (config.json); rerun {stage}"
        )
    if not any((folder / name).is_file() for name in ("processor_config.json", "preprocessor_config.json")):
        raise PublishError(f"{folder} has no processor (processor_config.json); rerun {stage}")
    results: list[BenchmarkResult] = []
    if stage_problem(manifest, "evaluate") is None:
        results = [read_metrics(p) for p in sorted(layout.eval_dir.glob("*/metrics.json"))]
    return RunInfo(layout=layout, recipe=recipe, manifest=manifest, kind=kind, results=results)
