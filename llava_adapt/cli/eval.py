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


EVAL_CLI_DIR = "eval_cli"  # a run's folder for `llava-adapt eval` results, next to the stage's eval/


def _print_results(domain: str, out: Path, results: dict[str, dict]) -> None:
    from llava_adapt.evaluate.metric_spec import format_metric, read_specs, spec_of

    for name, metrics in results.items():
        specs, _ = read_specs(metrics)
        scores = ", ".join(
            f"{key}={format_metric(value, spec_of(key, specs))}"
            if isinstance(value, (int, float))
            else f"{key}={value}"
            for key, value in metrics["metrics"].items()
        )
        line = f"{domain}/{name}: {metrics['num_items']} questions; {scores}"
        console.print(line, highlight=False, soft_wrap=True)
        where = out / name
        console.print(
            f"Wrote {where / 'predictions.jsonl'} and {where / 'metrics.json'}", highlight=False, soft_wrap=True
        )


def eval_command(
    model: str = typer.Argument(..., metavar="MODEL_OR_RUN_DIR", help=MODEL_HELP),
    benchmark: str | None = typer.Option(
        None,
        "--benchmark",
        help="One benchmark of the domain (`llava-adapt domain ls`); default: every benchmark the run evaluated "
        "(its recipe's evaluate.benchmarks), else the domain's only one.",
    ),
    domain: str | None = typer.Option(None, "--domain", help="Domain of the benchmark; default: the run's domain."),
    out: Path | None = typer.Option(
        None,
        "--out",
        help=f"Folder of the results, one subfolder per benchmark (OUT/<benchmark>/); default for a run: "
        f"RUN_DIR/{EVAL_CLI_DIR}/, next to the run's own eval/ (--out RUN_DIR/eval replaces the evaluate stage's "
        "files). Required for anything but a run directory.",
    ),
    split: str | None = typer.Option(None, "--split", help="Split, for benchmarks that have them (default: test)."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Answer only the first N questions."),
    batch_size: int | None = typer.Option(
        None,
        "--batch-size",
        min=1,
        help="Questions per generate call; default: the run's evaluate.batch_size, else 16.",
    ),
    max_new_tokens: int | None = typer.Option(
        None,
        "--max-new-tokens",
        min=1,
        help="Answer length limit; default: the run's (evaluate.max_new_tokens_by_benchmark, the benchmark's own, "
        "evaluate.max_new_tokens), else the benchmark's own, else 64.",
    ),
    data_root: Path | None = typer.Option(
        None, "--data-root", help="Folder the benchmark's files are in; default: the run's data.root, else '.'."
    ),
    arg: list[str] | None = typer.Option(
        None, "--arg", help="Benchmark argument key=value (repeatable) on top of the run's, e.g. --arg path=vqa_rad."
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
    """Evaluate a model on a domain's benchmarks: writes predictions.jsonl and metrics.json per benchmark.

    For a run directory with no other option, this is the run's own evaluation of its final model: the benchmarks,
    arguments, data root, answer lengths, batch size, temperature, judge and ensemble of its recipe.yaml, so the
    scores equal eval/<benchmark>/metrics.json's; the results go to RUN_DIR/eval_cli/<benchmark>/. Each option
    overrides the run's value. Any other model (an adapter or model folder, a Hub id: a stock checkpoint gives the
    baseline row) needs --domain and --out, and takes the benchmark's defaults.
    """
    from llava_adapt.evaluate.benchmark import BenchmarkArgsError, EvalSettings, benchmark_tasks, evaluate_benchmarks
    from llava_adapt.evaluate.resolve import resolve_model
    from llava_adapt.hub.run_info import load_run
    from llava_adapt.recipe.schema import EvaluateConfig
    from llava_adapt.registry import get_domain

    overrides = _parse_args(arg or [])
    aspect = _aspect(image_aspect_ratio)
    # everything that can be refused is checked before the model loads
    path = Path(model).expanduser()
    run = load_run(path) if (path / "manifest.json").is_file() else None
    recipe = run.recipe if run is not None else None
    if domain is None and recipe is None:
        raise BenchmarkArgsError("--domain is required unless MODEL_OR_RUN_DIR is a run directory")
    plugin = get_domain(domain or recipe.domain)
    same_domain = recipe is not None and recipe.domain == plugin.name
    if out is None and run is None:
        raise BenchmarkArgsError(
            "--out DIR is required unless MODEL_OR_RUN_DIR is a run directory (results go to DIR/<benchmark>/)"
        )
    out = out or run.layout.root / EVAL_CLI_DIR
    config = recipe.evaluate if same_domain else EvaluateConfig()
    if benchmark is not None:
        names = [benchmark]
    elif config.benchmarks:
        names = config.benchmarks
    else:
        names = [None]  # the domain's only benchmark (refused, with the list, when it has several)
    tasks = benchmark_tasks(config, plugin, out, names, overrides, split, limit, max_new_tokens)
    judged = any(task.bench.judge or config.ensemble for task in tasks)
    if judge is not None and not judged:
        raise BenchmarkArgsError(
            f"no benchmark of {', '.join(t.name for t in tasks)} has a judged score; drop the judge options"
        )
    base_judge = config.judge if judged else None
    options = {"judge": _judge_config(base_judge, judge, judge_base_url, judge_api_key_env)}
    if batch_size is not None:
        options["batch_size"] = batch_size
    if options["judge"] is None:
        options["ensemble"] = None
    root = data_root or Path(recipe.data.root if same_domain else ".")
    cache = run.layout.cache_dir if run is not None else out / "cache"
    seed = recipe.seed if recipe is not None else 0
    settings = EvalSettings.from_config(config, plugin.name, root, cache, seed, **options)

    def load():
        resolved = resolve_model(model, image_aspect_ratio=aspect)
        return resolved.model, resolved.processor

    result = evaluate_benchmarks(tasks, {"trained": load}, model, settings)
    _print_results(plugin.name, out, result.metrics)


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
    from llava_adapt.evaluate.chat import ChatSession, chat_loop, load_image
    from llava_adapt.evaluate.resolve import resolve_model

    picture = load_image(image)
    resolved = resolve_model(model, image_aspect_ratio=_aspect(image_aspect_ratio))
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
    from llava_adapt.evaluate.report import write_report

    path = write_report(run_dir, gallery_size=gallery)
    console.print(f"Wrote {path}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Mount `eval`, `chat` and `report` on the root `app`."""
    app.command(
        "eval",
        epilog="Example: llava-adapt eval runs/biomed  (the run's own evaluation, into runs/biomed/eval_cli/); "
        "llava-adapt eval llava-hf/llava-1.5-7b-hf --domain biomed --benchmark vqa_rad --limit 100 --out eval/stock",
    )(eval_command)
    app.command(
        "chat", epilog='Example: llava-adapt chat runs/biomed --image scan.png --prompt "What modality is this?"'
    )(chat_command)
    app.command("report", epilog="Example: llava-adapt report runs/general-tiny")(report_command)
