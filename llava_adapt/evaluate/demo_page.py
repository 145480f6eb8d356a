"""What the web demo (`llava-adapt demo`) shows about the model it serves: a title, the run's metrics and example
images with a question each.

For a run directory the title is the run's name (its folder), the description names the domain and the stage the
model comes from, the metrics are those of `eval/<benchmark>/metrics.json` (next to the untrained model's, when the
evaluate stage measured them) and the examples are held-out images the evaluate stage asked about, each with one of
the questions asked about it. Any model can be given examples from a folder of images instead (`--examples DIR`).
Nothing here imports Gradio.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from llava_adapt.evaluate.metric_spec import format_metric, spec_of
from llava_adapt.evaluate.resolve import ResolvedModel
from llava_adapt.hub.run_info import RunInfo

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
KIND_TEXT = {"adapter": "a PEFT adapter", "model": "a model folder", "hub": "a Hub checkpoint"}


@dataclass(frozen=True)
class Example:
    """An image the page offers to start a conversation with.

    Args:
        image (`Path`): the image file.
        question (`str`): a question to ask about it (`""` when there is none).
    """

    image: Path
    question: str = ""


@dataclass(frozen=True)
class DemoPage:
    """The text and examples around the chat.

    Args:
        title (`str`): the run's or model's name.
        description (`str`): Markdown: what the model is and where it comes from.
        metrics (`str`): a Markdown table of the run's evaluation results (`""` when there are none).
        examples (`list[Example]`): example images, at most `max_examples` of `demo_page`.
    """

    title: str
    description: str
    metrics: str = ""
    examples: list[Example] = field(default_factory=list)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"


def metrics_table(run: RunInfo) -> str:
    """Markdown tables of the run's metrics, one per benchmark, with a "before training" column when the evaluate
    stage measured the untrained model; `""` when the run has no evaluation results."""
    parts = []
    for result in run.results:
        scores = {metric: value for metric, value in result.metrics.items() if metric != "num_items"}
        if not scores:
            continue
        count = result.metrics.get("num_items")
        heading = f"**{result.name}**" + (f" · {_number(count)} questions" if count is not None else "")
        baseline = bool(result.baseline)
        lines = [heading, "", "| metric | this model |" + (" before training |" if baseline else "")]
        lines.append("|---|---|" + ("---|" if baseline else ""))
        for metric, value in scores.items():
            spec = spec_of(metric, result.specs)  # counts as integers, scores with four decimals
            line = f"| {metric} | {format_metric(value, spec)} |"
            if baseline:
                before = None if spec.kind == "count" else result.baseline.get(metric)
                line += f" {format_metric(before, spec) if before is not None else '–'} |"
            lines.append(line)
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def _bench_examples(bench_dir: Path) -> list[Example]:
    """One example per distinct image the benchmark asked about; the n-th image comes with the n-th question asked
    about it (counting round), so the examples show the benchmark's kinds of question rather than its first."""
    predictions = bench_dir / "predictions.jsonl"
    if not predictions.is_file():
        return []
    questions: dict[Path, list[str]] = {}
    for line in predictions.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(row, dict) or not isinstance(row.get("image"), str):
            continue
        image = (bench_dir / row["image"]).resolve()
        if image.is_file() and bench_dir.resolve() in image.parents:
            questions.setdefault(image, []).append(str(row.get("question") or ""))
    return [Example(image, asked[n % len(asked)]) for n, (image, asked) in enumerate(questions.items())]


def folder_examples(folder: Path) -> list[Example]:
    """The images directly inside `folder` (sorted by name), without questions.

    Raises:
        FileNotFoundError: `folder` is not a folder.
    """
    if not folder.is_dir():
        raise FileNotFoundError(f"examples folder {folder} does not exist")
    return [Example(p.resolve()) for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]


def demo_page(resolved: ResolvedModel, examples_dir: Path | None = None, max_examples: int = 6) -> DemoPage:
    """What the demo page shows for `resolved`.

    Args:
        resolved (`ResolvedModel`): the model the demo serves (`resolve_model`).
        examples_dir (`Path`, *optional*): a folder of example images; defaults to the images the run's evaluate
            stage asked about (none for a model that is not a run directory).
        max_examples (`int`, defaults to `6`): the most examples shown, taken in turn from each benchmark.

    Raises:
        FileNotFoundError: `examples_dir` is given and is not a folder.
    """
    run = resolved.run
    if run is None:
        title = Path(resolved.name.rstrip("/")).name or resolved.name
        description = f"{KIND_TEXT.get(resolved.kind, 'a model')}: `{resolved.name}`"
        metrics = ""
        per_bench = []
    else:
        title = run.layout.root.resolve().name
        description = (
            f"A llava-adapt run of the **{run.recipe.domain}** domain; the model is its `{run.model_stage}/` stage."
        )
        metrics = metrics_table(run)
        per_bench = [_bench_examples(run.layout.eval_dir / result.name) for result in run.results]
    if examples_dir is not None:
        per_bench = [folder_examples(examples_dir)]
    examples: list[Example] = []
    seen: set[Path] = set()
    for turn in range(max(map(len, per_bench), default=0)):  # round robin, so each benchmark is shown
        for bench in per_bench:
            if turn < len(bench) and bench[turn].image not in seen and len(examples) < max_examples:
                examples.append(bench[turn])
                seen.add(bench[turn].image)
    return DemoPage(title=title, description=description, metrics=metrics, examples=examples)
