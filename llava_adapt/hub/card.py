"""The model card (`README.md`) of a published run: Hub metadata that is right, and a body a reader can act on.

Metadata: `base_model` is a Hub id or absent, never a local path;
`base_model_relation` is `adapter` for a PEFT adapter and `finetune` for full weights; `library_name` is `peft` for
an adapter and `transformers` otherwise; `pipeline_tag` is `image-text-to-text` (PEFT and TRL would write
`text-generation`); `model-index` carries the evaluation results through `huggingface_hub.EvalResult`: the
metrics each benchmark declares as scores, nothing else (`llava_adapt.evaluate.metric_spec`: chance levels, counts,
diagnostics and undeclared metrics stay out).

The body opens with the domain plugin's `card_notices` (e.g. biomed's "not a medical device"), then states the
domain, the recipe, the training data and its provenance (the manifest's counts), the metrics, intended use and
limitations, and how to load the model with stock transformers and PEFT. The metrics table has one row per score
(the primary first), diagnostic and count, a column per model scored (this model, before training, without align,
the ensemble), and a column with each score's baseline (chance level, the judge's score of the reference answer);
counts print as integers. Everything in it comes from the run directory and the notices passed in, and is
deterministic: publishing the same run twice gives the same card, byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any, Literal

import jinja2
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from llava_adapt.evaluate.metric_spec import MetricSpec, declared_spec, format_metric, spec_of
from llava_adapt.hub.run_info import BenchmarkResult, RunInfo
from llava_adapt.run.stage_table import STAGE_ORDER
from llava_adapt.train.config import LoraSettings

Artefact = Literal["adapter", "full", "merged"]

VERSION_KEYS = ("llava-adapt", "transformers", "peft", "trl", "torch", "huggingface_hub")
STAGES = tuple(name for name in STAGE_ORDER if name != "publish")  # the stages whose counts the card lists
# The part of the card's code that is the same for every artefact (kept here, not in the Markdown template, so that
# Markdown formatters leave the template's placeholders alone).
USAGE = """
image = Image.open("example.png")
messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What does this image show?"}]}]
prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
inputs = processor(images=image, text=prompt, return_tensors="pt").to(model.device)
output = model.generate(**inputs, max_new_tokens=128)
print(processor.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True))
"""
VQA_TASK = ("visual-question-answering", "Visual Question Answering")

_env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


def _quote(text: str) -> str:
    return repr(text).replace("'", '"')


def eval_results(run: RunInfo) -> list[EvalResult]:
    """One `EvalResult` per benchmark and declared score of this model, in file order (baselines, counts,
    diagnostics and undeclared metrics left out)."""
    return [
        EvalResult(
            task_type=VQA_TASK[0],
            task_name=VQA_TASK[1],
            dataset_type=result.name,
            dataset_name=result.name,
            metric_type=metric,
            metric_name=metric,
            metric_value=value,
        )
        for result in run.results
        for metric, value in result.metrics.items()
        if spec_of(metric, result.specs).kind == "score"
    ]


def card_data(
    run: RunInfo, repo_id: str, artefact: Artefact, license: str | None = None, datasets: Sequence[str] = ()
) -> ModelCardData:
    """The card's metadata.

    Args:
        run (`RunInfo`): the checked run directory.
        repo_id (`str`): the target repository, `OWNER/NAME`.
        artefact (`str`): `"adapter"`, `"full"` (full weights trained in stage 2) or `"merged"` (adapter merged
            into its base).
        license (`str`, *optional*): a Hub license id; defaults to the recipe's `publish.license`.
        datasets (`Sequence[str]`, defaults to `()`): Hub ids of the datasets the model was trained on.
    """
    base = run.base_model.hub_id
    adapter = artefact == "adapter"
    tags = ["llava-adapt", run.recipe.domain, "llava", "vision-language"]
    if adapter:
        tags.append(_adapter(run)[0])
    results = eval_results(run)
    return ModelCardData(
        base_model=base,
        base_model_relation=("adapter" if adapter else "finetune") if base else None,
        library_name="peft" if adapter else "transformers",
        pipeline_tag="image-text-to-text",
        license=license or run.recipe.publish.license,
        datasets=list(datasets) or None,
        tags=tags,
        model_name=repo_id.split("/")[-1] if results else None,
        eval_results=results or None,
    )


def _load_code(run: RunInfo, repo_id: str, artefact: Artefact, revision: str | None) -> tuple[str, str]:
    rev = f", revision={_quote(revision)}" if revision and revision != "main" else ""
    if artefact != "adapter":
        code = (
            "from PIL import Image\n"
            "from transformers import AutoModelForImageTextToText, AutoProcessor\n\n"
            f'model = AutoModelForImageTextToText.from_pretrained("{repo_id}"{rev}, dtype="auto")\n'
            f'processor = AutoProcessor.from_pretrained("{repo_id}"{rev})'
        )
        return code, ""
    base = run.base_model.hub_id if run.recipe.model.source == "llava" else None
    code = (
        "from peft import PeftModel\n"
        "from PIL import Image\n"
        "from transformers import AutoModelForImageTextToText, AutoProcessor\n\n"
        f'base = AutoModelForImageTextToText.from_pretrained("{base or "path/to/base-llava"}", dtype="auto")\n'
        f'model = PeftModel.from_pretrained(base, "{repo_id}"{rev})  # .merge_and_unload() for faster inference\n'
        f'processor = AutoProcessor.from_pretrained("{repo_id}"{rev})'
    )
    note = ""
    if base is None:
        note = (
            "This adapter's base is not a LLaVA checkpoint on the Hub (see *Started from* above): load the model "
            "the run trained on in place of `path/to/base-llava`, or use the merged model that "
            "`llava-adapt export RUN_DIR --out DIR --merged` (or `llava-adapt publish --merged`) writes."
        )
    elif (run.layout.converted_dir / "config.json").is_file():  # the run converted an original checkpoint
        code = code.replace(f'"{base}"', '"base-llava-hf"', 1)
        note = (
            f"`{base}` is in LLaVA's original format, which stock transformers cannot load: convert it first with "
            f"`llava-adapt convert {base} --out base-llava-hf` (the run trained on that conversion), or use the "
            "merged model that `llava-adapt export RUN_DIR --out DIR --merged` writes."
        )
    return code, note


def _artefact_description(run: RunInfo, artefact: Artefact) -> str:
    if artefact == "merged":
        return (
            "the stage-2 LoRA adapter merged into its base: a full `LlavaForConditionalGeneration` in safetensors, "
            "with its processor and chat template; stock transformers (and servers such as vLLM) load it as is."
        )
    if artefact == "full":
        return "full `LlavaForConditionalGeneration` weights (safetensors) with the processor and chat template."
    mode, lora = _adapter(run)
    return (
        f"a PEFT {_mode(mode)} adapter on the language model (r={lora.r}, alpha={lora.alpha}), "
        "the trained projector saved in full inside it, and the processor with its chat template."
    )


def _adapter(run: RunInfo) -> tuple[str, LoraSettings]:
    """The mode and shape of the published adapter: instruct's, or, when `finetune` trained a new one, its own."""
    recipe = run.recipe
    if "instruct" in recipe.stages or run.model_stage == "instruct":
        return recipe.instruct.mode, recipe.instruct.lora
    return recipe.finetune.mode or "lora", recipe.finetune.lora or LoraSettings()


def _finetune_description(run: RunInfo) -> str:
    """One line on the downstream fine-tune, or `""` when the recipe has none."""
    if run.model_stage != "finetune":
        return ""
    recipe, cfg = run.recipe, run.recipe.finetune
    mode = "full" if run.kind == "full" else _adapter(run)[0]
    if "instruct" in recipe.stages:
        what = "the stage-2 model trained further" + (" (the same adapter)" if run.kind == "adapter" else " in full")
    else:
        what = "full fine-tuning" if mode == "full" else f"a new {_mode(mode)} adapter"
    split = cfg.args.get("split", "train")
    length = _length(cfg.max_steps, cfg.num_train_epochs)
    return (
        f"{what} on the `{split}` split of the `{cfg.benchmark}` benchmark, each question a one-turn conversation "
        f"with loss on the answer only, learning rate {cfg.resolved_learning_rate(mode)}, {length}."
    )


def _align_description(run: RunInfo) -> str:
    if "align" not in run.recipe.stages:
        return "not run; the projector comes from the base checkpoint."
    cfg = run.recipe.align
    if cfg.projector_init:
        return (
            f"not trained: LLaVA's released stage-1 projector `{cfg.projector_init}` was loaded instead "
            "(`align.projector_init`)."
        )
    return (
        f"projector only, loss on the caption only, learning rate {cfg.learning_rate}, "
        f"{_length(cfg.max_steps, cfg.num_train_epochs)}."
    )


def _instruct_description(run: RunInfo) -> str:
    cfg = run.recipe.instruct
    what = (
        "full fine-tuning of the language model" if cfg.mode == "full" else f"{_mode(cfg.mode)} on the language model"
    )
    tower = "trained" if cfg.train_vision_tower else "frozen"
    return (
        f"{what} and the projector (learning rate {cfg.learning_rate}, projector learning rate "
        f"{cfg.projector_lr or cfg.learning_rate}), vision tower {tower}, loss on assistant turns only, "
        f"{_length(cfg.max_steps, cfg.num_train_epochs)}."
    )


def _length(max_steps: int, epochs: float) -> str:
    if max_steps > 0:
        return f"{max_steps} steps"
    return f"{_number(epochs)} epoch" + ("" if epochs == 1 else "s")


def _mode(mode: str) -> str:
    return {"lora": "LoRA", "qlora": "QLoRA"}.get(mode, mode)


def _generation(run: RunInfo) -> tuple[str, list[str]]:
    recipe = run.recipe
    entry = run.manifest.stage("generate")
    if entry is None:
        if recipe.data.instruct_file:
            return "ready-made conversations given by the recipe's `data.instruct_file`.", []
        return "none recorded in the manifest.", []
    if recipe.generate.backend == "offline":
        text = "generated offline from the captions by the domain's templates (no language model involved)."
    else:
        text = (
            f"generated from the captions (and allow-listed context) by `{recipe.generate.model}` through an "
            "OpenAI-compatible API, with the domain's prompts; answers that betray the caption were rejected."
        )
    info = entry.get("info") or {}
    accounting = [f"{key}: {_number(v)}" for key, v in sorted(info.items()) if isinstance(v, (int, float))]
    return text, accounting


def _stage_table(run: RunInfo) -> list[str]:
    lines = ["| stage | records kept | records skipped (reason: count) |", "|---|---|---|"]
    for name in STAGES:
        entry = run.manifest.stage(name)
        if entry is None or "counts" not in entry:
            continue
        counts = entry["counts"]
        skipped = ", ".join(f"{reason}: {n}" for reason, n in counts.get("skipped", {}).items()) or "none"
        lines.append(f"| {name} | {counts.get('kept', 0)} | {skipped} |")
    return lines if len(lines) > 2 else []


# The kinds of metric rows, in table order; baselines with a score to stand next to go in its "baseline" column.
_ROW_ORDER = {"score": 0, "diagnostic": 1, "baseline": 2, "count": 3}
_NO_VALUE = "–"


def _kind_label(metric: str, spec: MetricSpec, result: BenchmarkResult) -> str:
    if spec.kind == "score":
        label = "primary score" if metric == result.primary else "score"
        return label + (" (%)" if spec.percent else "")
    if declared_spec(metric, result.specs) is None:
        return f"{spec.kind} (undeclared)"
    return spec.kind


def _benchmark_rows(result: BenchmarkResult, keys: list[str]) -> list[list[str]]:
    """The table rows of one benchmark, as cells: one row per metric any model reported, scores first (the primary
    first); a baseline declared for a reported metric goes in that row's last cell (`""` where there is none)."""
    names = list(dict.fromkeys([*result.metrics, *result.ensemble]))
    specs = {name: spec_of(name, result.specs) for name in names}
    attached = {spec.baseline_for: name for name, spec in specs.items()
                if spec.kind == "baseline" and spec.baseline_for in specs}  # fmt: skip
    order = sorted(names, key=lambda n: (_ROW_ORDER[specs[n].kind], n != result.primary, names.index(n)))
    rows = []
    for name in order:
        if name in attached.values():
            continue
        spec = specs[name]
        values = [result.metrics.get(name), *(getattr(result, key).get(name) for key in keys)]
        cells = [result.name, name, _kind_label(name, spec, result)]
        cells += [format_metric(v, spec) if v is not None else _NO_VALUE for v in values]
        reference = attached.get(name)
        level = result.metrics.get(reference) if reference else None
        cells.append(f"{format_metric(level, specs[reference])} ({reference})" if level is not None else "")
        rows.append(cells)
    return rows


def _metric_table(run: RunInfo) -> list[str]:
    columns = [(title, key) for title, key in (("before training", "baseline"), ("without align", "without_align"),
                                               ("ensemble with the judge model", "ensemble"))
               if any(getattr(r, key) for r in run.results)]  # fmt: skip
    rows = [row for result in run.results for row in _benchmark_rows(result, [key for _, key in columns])]
    titles = ["benchmark", "metric", "kind", "this model", *(title for title, _ in columns), "reference level"]
    if not any(row[-1] for row in rows):  # no benchmark declares a chance or reference level
        titles, rows = titles[:-1], [row[:-1] for row in rows]
    lines = ["| " + " | ".join(row) + " |" for row in [titles, ["---"] * len(titles), *rows]]
    return lines if rows else []


def _ensemble_description(run: RunInfo) -> str:
    """What the "ensemble with the judge model" column is, or `""` when no benchmark has one."""
    cfg = run.recipe.evaluate
    if not any(r.ensemble for r in run.results) or cfg.ensemble is None or cfg.judge is None:
        return ""
    return (
        f'"ensemble with the judge model" combines this model\'s answers with those of `{cfg.judge.model}` '
        f"(`evaluate.ensemble: {cfg.ensemble}`; LLaVA's GPT-4 ensembles), scored with the same metrics."
    )


def _no_results_reason(run: RunInfo) -> str:
    status = run.evaluate_status
    if status is None:
        return "Not evaluated: the recipe did not run the `evaluate` stage."
    if status != "complete":
        return f"Not evaluated: the `evaluate` stage did not complete (status {status!r})."
    return "The `evaluate` stage wrote no metrics."


def build_model_card(
    run: RunInfo,
    repo_id: str,
    artefact: Artefact,
    license: str | None = None,
    datasets: Sequence[str] = (),
    revision: str | None = None,
    notices: Sequence[str] = (),
) -> ModelCard:
    """Render the model card of a run.

    Args:
        run (`RunInfo`): the checked run directory (`load_run`).
        repo_id (`str`): the target repository, `OWNER/NAME`; the loading code refers to it.
        artefact (`str`): `"adapter"`, `"full"` or `"merged"`: what the repository holds.
        license (`str`, *optional*): a Hub license id; defaults to the recipe's `publish.license`.
        datasets (`Sequence[str]`, defaults to `()`): Hub ids of the training datasets, for the metadata.
        revision (`str`, *optional*): the branch the files go to; the loading code names it unless it is `main`.
        notices (`Sequence[str]`, defaults to `()`): paragraphs shown under the title, the domain plugin's
            `Domain.card_notices` (e.g. that a medical model is not a medical device).

    Returns:
        A `huggingface_hub.ModelCard`; `str(card)` is the README text.
    """
    data = card_data(run, repo_id, artefact, license=license, datasets=datasets)
    domain = run.recipe.domain
    load_code, load_note = _load_code(run, repo_id, artefact, revision)
    generation, accounting = _generation(run)
    versions = run.manifest.data.get("versions", {})
    metric_table = _metric_table(run)
    context: dict[str, Any] = {
        "card_data": data.to_yaml(),
        "model_name": repo_id.split("/")[-1],
        "domain": domain,
        "notices": list(notices),
        "base_description": run.base_model.description,
        "artefact_description": _artefact_description(run, artefact),
        "align_description": _align_description(run),
        "instruct_description": _instruct_description(run),
        "finetune_description": _finetune_description(run),
        "usage": f"```python\n{load_code}\n{USAGE}```",
        "load_note": load_note,
        "data_source": run.recipe.data.source,
        "generation_description": generation,
        "generation_accounting": accounting,
        "stage_table": _stage_table(run),
        "metric_table": metric_table,
        "has_reference_level": bool(metric_table) and metric_table[0].endswith("| reference level |"),
        "has_without_align": any(r.without_align for r in run.results),
        "ensemble_description": _ensemble_description(run),
        "metric_notes": [f"{r.name}: {note}" for r in run.results for note in r.notes],
        "no_results_reason": _no_results_reason(run),
        "versions": [(key, versions[key]) for key in VERSION_KEYS if key in versions],
    }
    template = resources.files("llava_adapt.hub").joinpath("model_card.md").read_text(encoding="utf-8")
    return ModelCard(_env.from_string(template).render(**context))
