"""`llava-adapt eval`, `llava-adapt chat` and `llava-adapt report`: score a model, talk to it, report a run.

All three are top-level verbs; `register(app)` mounts them on the root app. Heavy imports (torch, transformers,
matplotlib) happen inside the commands, so that the CLI starts fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
import yaml
from rich.console import Console

console = Console()
err_console = Console(stderr=True)

MODEL_HELP = (
    "A run directory (its final model: finetune/ or instruct/), a PEFT adapter folder, a model folder in llava-hf "
    "layout, or a Hub id such as llava-hf/llava-1.5-7b-hf."
)


def _fail(exc: Exception) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {exc}", markup=True, highlight=False, soft_wrap=True)
    return typer.Exit(1)


def _parse_args(pairs: list[str]) -> dict:
    """`key=value` strings to a dict; values are parsed as YAML (`limit=5` is an int, `types=[closed]` a list)."""
    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{pair!r} is not of the form key=value", param_hint="--arg")
        parsed[key.strip()] = yaml.safe_load(value)
    return parsed


def _judge_config(base, model: str | None, base_url: str | None, api_key_env: str | None):
    """The judge settings: the run's `evaluate.judge` (if any) with the command-line options on top; `None` when
    neither names a judge."""
    from llava_adapt.evaluate.config import JudgeConfig

    if base is None and model is None:
        if base_url or api_key_env:
            raise typer.BadParameter(
                "--judge-base-url and --judge-api-key-env need --judge MODEL", param_hint="--judge"
            )
        return None
    options = {"model": model, "base_url": base_url, "api_key_env": api_key_env}
    settings = (base or JudgeConfig()).model_dump()
    settings.update({key: value for key, value in options.items() if value is not None})
    return JudgeConfig.model_validate(settings)


def _aspect(value: str | None) -> str | None:
    if value not in (None, "pad", "crop"):
        raise typer.BadParameter(f"{value!r}: use pad or crop", param_hint="--image-aspect-ratio")
    return value


def _default_out(model: str, benchmark: str) -> Path:
    name = Path(model.rstrip("/")).name if Path(model).exists() else model.replace("/", "--")
    return Path("eval_results") / name / benchmark


def eval_command(
    model: str = typer.Argument(..., metavar="MODEL_OR_RUN_DIR", help=MODEL_HELP),
    domain: str | None = typer.Option(None, "--domain", help="Domain of the benchmark; default: the run's domain."),
    benchmark: str | None = typer.Option(
        None, "--benchmark", help="Benchmark of the domain (`llava-adapt domain ls`); default: its only one."
    ),
    split: str | None = typer.Option(None, "--split", help="Split, for benchmarks that have them (default: test)."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Answer only the first N questions."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Questions per generate call."),
    max_new_tokens: int | None = typer.Option(
        None, "--max-new-tokens", min=1, help="Answer length limit; default: the benchmark's own, else 64."
    ),
    out: Path | None = typer.Option(None, "--out", help="Output folder; default: eval_results/<model>/<benchmark>."),
    data_root: Path | None = typer.Option(
        None, "--data-root", help="Folder the benchmark's files are in; default: the run's data.root, else '.'."
    ),
    arg: list[str] | None = typer.Option(
        None, "--arg", help="Benchmark argument key=value (repeatable), e.g. --arg path=vqa_rad."
    ),
    image_aspect_ratio: str | None = typer.Option(
        None, "--image-aspect-ratio", help="pad (LLaVA-1.5's pad to square) or crop; default: the processor's."
    ),
    judge: str | None = typer.Option(
        None, "--judge", help="Judge model (e.g. gpt-4o) for benchmarks with a judged score; default: the run's."
    ),
    judge_base_url: str | None = typer.Option(None, "--judge-base-url", help="OpenAI-compatible server of the judge."),
    judge_api_key_env: str | None = typer.Option(
        None, "--judge-api-key-env", help="Environment variable holding the judge's key (default OPENAI_API_KEY)."
    ),
) -> None:
    """Evaluate a model on one benchmark: writes predictions.jsonl and metrics.json.

    Works on any compatible model, so a stock checkpoint gives the baseline row to compare a run against. For a
    run directory, the benchmark's arguments and data root default to the run's recipe.
    """
    from llava_adapt.evaluate.benchmark import BenchmarkArgsError, benchmark_args, evaluate_benchmark, pick_benchmark
    from llava_adapt.evaluate.judge import JudgeError
    from llava_adapt.evaluate.resolve import ModelResolveError, resolve_model
    from llava_adapt.registry import DomainLoadError, DomainNotFoundError, get_domain
    from llava_adapt.stages.evaluate import EvaluateError

    overrides = _parse_args(arg or [])
    from llava_adapt.hub.errors import PublishError
    from llava_adapt.hub.run_info import load_run

    try:
        is_run = (Path(model).expanduser() / "manifest.json").is_file()
        recipe = load_run(Path(model).expanduser()).recipe if is_run else None  # checked before the model loads
        if domain is None and recipe is None:
            raise BenchmarkArgsError("--domain is required unless MODEL_OR_RUN_DIR is a run directory")
        plugin = get_domain(domain or recipe.domain)
        name, bench = pick_benchmark(plugin, benchmark)
        same_domain = recipe is not None and recipe.domain == plugin.name
        base = recipe.evaluate.args.get(name, {}) if same_domain else {}
        args = benchmark_args(bench, name, base, overrides, split, limit)
        root = data_root or Path(recipe.data.root if same_domain else ".").expanduser()
        base_judge = recipe.evaluate.judge if same_domain and bench.judge is not None else None
        judge_config = _judge_config(base_judge, judge, judge_base_url, judge_api_key_env)
        resolved = resolve_model(model, image_aspect_ratio=_aspect(image_aspect_ratio))
        metrics = evaluate_benchmark(
            resolved, plugin, name, out or _default_out(model, name), args, root, limit, batch_size, max_new_tokens,
            recipe.seed if recipe else 0, judge_config,
        )  # fmt: skip
    except (ModelResolveError, PublishError, BenchmarkArgsError, DomainNotFoundError, DomainLoadError) as exc:
        raise _fail(exc) from None
    except JudgeError as exc:
        raise _fail(exc) from None
    except (FileNotFoundError, EvaluateError) as exc:  # missing data files, a benchmark without usable items
        raise _fail(exc) from None
    where = out or _default_out(model, name)
    scores = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics["metrics"].items())
    console.print(f"{plugin.name}/{name}: {metrics['num_items']} questions; {scores}", highlight=False, soft_wrap=True)
    console.print(f"Wrote {where / 'predictions.jsonl'} and {where / 'metrics.json'}", highlight=False, soft_wrap=True)


def chat_command(
    model: str = typer.Argument(..., metavar="MODEL_OR_RUN_DIR", help=MODEL_HELP),
    image: Path = typer.Option(..., "--image", help="The image to talk about."),
    prompt: str | None = typer.Option(
        None, "--prompt", help="Ask this once and print the answer; without it, read turns from stdin."
    ),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens", min=1, help="Answer length limit per turn."),
    temperature: float = typer.Option(0.0, "--temperature", min=0.0, help="0 = greedy, reproducible."),
    image_aspect_ratio: str | None = typer.Option(
        None, "--image-aspect-ratio", help="pad (LLaVA-1.5's pad to square) or crop; default: the processor's."
    ),
) -> None:
    """Ask a model about an image: one answer with --prompt, else a conversation read from stdin.

    In a conversation, each line is a turn and the model sees the whole history; it ends at end of input or at a
    line 'exit' or 'quit'.
    """
    from llava_adapt.evaluate.chat import ChatImageError, ChatSession, chat_loop, load_image
    from llava_adapt.evaluate.resolve import ModelResolveError, resolve_model

    try:
        picture = load_image(image)
        resolved = resolve_model(model, image_aspect_ratio=_aspect(image_aspect_ratio))
    except (ChatImageError, ModelResolveError) as exc:
        raise _fail(exc) from None
    session = ChatSession(resolved.model, resolved.processor, picture, max_new_tokens, temperature)
    if prompt is not None:
        typer.echo(session.ask(prompt))
        return
    interactive = sys.stdin.isatty()
    if interactive:
        err_console.print("Ask about the image; 'exit' or Ctrl-D ends the conversation.")

    def lines():
        while True:
            if interactive:
                err_console.print("[bold]>[/bold] ", end="")
            line = sys.stdin.readline()
            if not line:
                return
            yield line

    chat_loop(session, lines(), typer.echo)


def report_command(
    run_dir: Path = typer.Argument(..., help="A run directory (the run_dir of `llava-adapt recipe run`)."),
    gallery: int = typer.Option(8, "--gallery", min=0, help="Sample predictions shown per benchmark."),
) -> None:
    """Write RUN_DIR/report.html: training curves, metrics, stage table and sample predictions (PNGs in report/)."""
    from llava_adapt.evaluate.report import ReportError, write_report

    try:
        path = write_report(run_dir, gallery_size=gallery)
    except ReportError as exc:
        raise _fail(exc) from None
    console.print(f"Wrote {path}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Mount `eval`, `chat` and `report` on the root `app`."""
    app.command(
        "eval",
        epilog="Example: llava-adapt eval runs/biomed --benchmark vqa_rad --limit 100 --out eval/vqa_rad",
    )(eval_command)
    app.command(
        "chat", epilog='Example: llava-adapt chat runs/biomed --image scan.png --prompt "What modality is this?"'
    )(chat_command)
    app.command("report", epilog="Example: llava-adapt report runs/general-tiny")(report_command)
