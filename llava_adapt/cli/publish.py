"""`llava-adapt publish` and `llava-adapt export`: a run directory to the Hub, or to a Hub-ready folder.

Both are top-level verbs; `register(app)` mounts them on the root app.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from llava_adapt.hub.errors import PublishError

console = Console()
err_console = Console(stderr=True)

RUN_DIR_HELP = "A run directory whose last training stage (instruct or finetune) completed (`recipe run`'s run_dir)."
DATASET_HELP = "Hub id of a training dataset for the card (repeatable); default: what the domain plugin declares."
LICENSE_HELP = "License id for the card (e.g. apache-2.0, llama2); default: the recipe's publish.license."


def _fail(exc: Exception) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
    return typer.Exit(1)


def publish(
    run_dir: Path = typer.Argument(..., help=RUN_DIR_HELP),
    repo_id: str = typer.Option(..., "--repo-id", help="Target repository, OWNER/NAME (created if missing)."),
    private: bool = typer.Option(False, "--private", help="Create the repository private."),
    revision: str | None = typer.Option(None, "--revision", help="Branch to commit to (created from main)."),
    merged: bool = typer.Option(False, "--merged", help="Upload full weights with the adapter merged in."),
    license: str | None = typer.Option(None, "--license", help=LICENSE_HELP),
    dataset: list[str] | None = typer.Option(None, "--dataset", help=DATASET_HELP),
) -> None:
    """Upload a run (adapter or merged model, processor, model card, recipe, metrics) to the Hugging Face Hub.

    The token comes from HF_TOKEN or `hf auth login`; HF_ENDPOINT selects another Hub. Publishing the same run
    again makes no new commit; a failed upload is retried, and rerunning the command completes it.
    """
    from llava_adapt.hub.publish import publish as publish_run

    try:
        result = publish_run(
            run_dir, repo_id, private=private, revision=revision, merged=merged, license=license, datasets=dataset
        )
    except PublishError as exc:
        raise _fail(exc) from None
    where = f"{result.repo_url} ({result.revision}), commit {result.commit_oid[:10]}"
    if result.changed:
        console.print(f"Published {len(result.files)} files to {where}", highlight=False)
    else:
        console.print(f"Unchanged: the repository already holds these files: {where}", highlight=False)
    if result.deleted:
        console.print(f"Removed files the run no longer has: {', '.join(result.deleted)}")


def export(
    run_dir: Path = typer.Argument(..., help=RUN_DIR_HELP),
    out: Path = typer.Option(..., "--out", help="Folder to write (replaced if it exists)."),
    merged: bool = typer.Option(
        False, "--merged", help="Merge the adapter into its base: a stock transformers model."
    ),
    repo_id: str | None = typer.Option(None, "--repo-id", help="Repository the card's loading code names."),
    license: str | None = typer.Option(None, "--license", help=LICENSE_HELP),
    dataset: list[str] | None = typer.Option(None, "--dataset", help=DATASET_HELP),
) -> None:
    """Write a run as the folder `publish` would upload: model files, processor, model card, recipe, metrics.

    With --merged the folder is a full model that AutoModelForImageTextToText and AutoProcessor load as is
    (what servers such as vLLM need when the projector was trained).
    """
    from llava_adapt.hub.bundle import write_bundle

    try:
        files = write_bundle(
            run_dir,
            out,
            repo_id or f"OWNER/{run_dir.resolve().name}",
            merged=merged,
            license=license,
            datasets=dataset,
        )
    except PublishError as exc:
        raise _fail(exc) from None
    console.print(f"Wrote {len(files)} files to {out}")


def register(app: typer.Typer) -> None:
    """Mount `publish` and `export` on the root `app`."""
    app.command("publish", epilog="Example: llava-adapt publish runs/biomed --repo-id me/llava-med-lora --private")(
        publish
    )
    app.command("export", epilog="Example: llava-adapt export runs/biomed --out merged/ --merged")(export)
