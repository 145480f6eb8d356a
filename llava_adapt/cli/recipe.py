"""`llava-adapt recipe ...`: list, copy, validate and run recipes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import typer
import yaml
from rich.console import Console
from rich.table import Table

from llava_adapt.cli.errors import CommandGroup
from llava_adapt.errors import InputError
from llava_adapt.recipe.catalog import recipe_catalog
from llava_adapt.recipe.loader import find_recipe, load_recipe, read_presets

app = typer.Typer(
    cls=CommandGroup,
    help="Recipes: list, copy, validate and run them.",
    epilog="Example: llava-adapt recipe validate biomed --preset tiny",
    no_args_is_help=True,
)
console = Console()
err_console = Console(stderr=True)

OVERRIDES_HELP = "Overrides as dotted.key=value, e.g. instruct.learning_rate=1e-4 evaluate.batch_size=8."


def _header(path: Path) -> str:
    """The first line of a recipe's header comment."""
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.lstrip("#").strip()
        if line.startswith("#") and text:
            return text
        if not line.startswith("#") and line.strip():
            break
    return ""


@app.command("ls", epilog="Example: llava-adapt recipe ls --json")
def ls(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List the recipes, built-in and shipped by plugin packages, with their domain and presets."""
    catalog = recipe_catalog()
    rows = []
    for name, recipe in sorted(catalog.recipes.items()):
        try:
            data = yaml.safe_load(recipe.path.read_text(encoding="utf-8")) or {}
            presets = read_presets(recipe.path)
        except (yaml.YAMLError, UnicodeDecodeError, AttributeError) as exc:
            catalog.warnings.append(f"recipe {name!r} ({recipe.path}) is not a YAML mapping: {exc}")
            continue
        rows.append(
            {
                "name": name,
                "domain": data.get("domain") if isinstance(data, dict) else None,
                "description": _header(recipe.path),
                "presets": presets,
                "path": str(recipe.path),
                "provider": recipe.provider,
            }
        )
    for warning in catalog.warnings:
        err_console.print(f"[yellow]warning:[/yellow] {warning}", markup=True, highlight=False, soft_wrap=True)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="Recipes")
    for col in ("name", "domain", "presets", "provider", "description"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], str(r["domain"]), ", ".join(r["presets"]), r["provider"], r["description"])
    console.print(table)


@app.command("cp", epilog="Example: llava-adapt recipe cp biomed my_biomed.yaml")
def cp(
    name: str = typer.Argument(..., help="A recipe name (see `recipe ls`)."),
    dest: Path = typer.Argument(..., help="Destination file or folder."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Copy a recipe, built-in or from a plugin package (comments and presets included), to edit it."""
    source = find_recipe(name)
    target = dest / source.name if dest.is_dir() else dest
    if target.exists() and not force:
        raise InputError(f"{target} exists; pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    console.print(f"Copied {name} to {target}")


@app.command(
    "validate",
    epilog="Example: llava-adapt recipe validate biomed --preset tiny instruct.mode=full",
)
def validate(
    recipe: str = typer.Argument(..., help="A recipe name (see `recipe ls`) or a YAML path."),
    overrides: list[str] = typer.Argument(None, help=OVERRIDES_HELP, show_default=False),
    preset: str = typer.Option(None, "--preset", "-p", help="A preset of the recipe, e.g. tiny."),
) -> None:
    """Check a recipe (keys, types, stage order, domain, sources, benchmarks) without running anything."""
    loaded = load_recipe(recipe, preset=preset, overrides=overrides or [])
    r = loaded.recipe
    console.print(
        f"[green]ok[/green] {loaded.path}{f' (preset {preset})' if preset else ''}: domain {r.domain}, "
        f"stages {' -> '.join(r.stages)}, run dir {r.run_dir}"
    )


@app.command(
    "plan",
    epilog="Examples: llava-adapt recipe plan biomed --preset tiny --json; "
    "llava-adapt recipe plan general --accelerate-config zero3 --num-gpus 8",
)
def plan(
    recipe: str = typer.Argument(..., help="A recipe name (see `recipe ls`) or a YAML path."),
    overrides: list[str] = typer.Argument(None, help=OVERRIDES_HELP, show_default=False),
    preset: str = typer.Option(None, "--preset", "-p", help="A preset of the recipe, e.g. tiny."),
    run_dir: str = typer.Option(None, "--run-dir", help="Run directory (default: the recipe's run_dir)."),
    num_gpus: int = typer.Option(None, "--num-gpus", min=1, help="Training processes (default: the config's, or 1)."),
    accelerate_config: str = typer.Option(
        None,
        "--accelerate-config",
        help="A shipped accelerate config (ddp, zero2, zero3, fsdp) or a YAML path: what the processes shard.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
) -> None:
    """Say what a run will do and cost before anything is spent: records and steps per stage, parameters per part
    and trainable per stage, peak GPU memory per device, and the teacher's requests, tokens and cost. Reads configs
    only (the model is built on the meta device; no weights are loaded) and what the run directory already holds.

    The memory figure is an estimate: weights (load dtype; QLoRA: 4-bit NF4 language model) + gradients and AdamW
    states of the trainable parameters (in their dtype; DeepSpeed: fp32 master + moments, 12 bytes) sharded as the
    accelerate config does + activations of per_device_train_batch_size x max_length tokens (a decoder layer keeps
    6h + 2kv + 4i values a token, only its input with checkpointing; logits V x (a + 8) bytes a token; the vision
    tower's tokens per image). `llava_adapt/plan/memory.py` documents every term.
    """
    from llava_adapt.plan.build import build_plan
    from llava_adapt.plan.distributed import resolve_distributed
    from llava_adapt.plan.render import print_plan

    loaded = load_recipe(recipe, preset=preset, overrides=overrides or [], run_dir=run_dir)
    result = build_plan(loaded, loaded.domain(), resolve_distributed(accelerate_config, num_gpus))
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    print_plan(result, console)


@app.command(
    "run",
    epilog="Example: llava-adapt recipe run biomed --preset tiny --run-dir runs/biomed-tiny align.max_steps=100",
)
def run(
    recipe: str = typer.Argument(..., help="A recipe name (see `recipe ls`) or a YAML path."),
    overrides: list[str] = typer.Argument(None, help=OVERRIDES_HELP, show_default=False),
    preset: str = typer.Option(None, "--preset", "-p", help="A preset of the recipe, e.g. tiny."),
    run_dir: str = typer.Option(None, "--run-dir", help="Run directory (default: the recipe's run_dir)."),
    force: str = typer.Option(None, "--force", help="Rerun from this stage on, e.g. --force instruct."),
) -> None:
    """Run a recipe's stages; completed stages with an unchanged config are skipped, interrupted ones resumed."""
    from llava_adapt.run.pipeline import process_state, run_pipeline

    loaded = load_recipe(recipe, preset=preset, overrides=overrides or [], run_dir=run_dir)
    domain = loaded.domain()

    def on_event(step, event: str) -> None:
        if event == "skip":
            console.print(f"[dim]- {step.name}: skipped ({step.reason})[/dim]")
        elif event == "start":
            verb = "resuming" if step.action == "resume" else "running"
            console.print(f"[bold]> {step.name}[/bold]: {verb} ({step.reason})")
        elif event == "done":
            console.print(f"[green]✓ {step.name}[/green]")

    # A failure prints one line (and where the manifest records it) through CommandGroup; a bug keeps its traceback.
    run_pipeline(loaded, domain, force=force, on_event=on_event)
    if not process_state().is_main_process:
        return
    from llava_adapt.evaluate.report import write_report

    report = write_report(Path(loaded.recipe.run_dir))
    console.print(f"Run directory: {loaded.recipe.run_dir} (manifest.json records every stage); report: {report}")
