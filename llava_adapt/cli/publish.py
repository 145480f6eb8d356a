"""`llava-adapt publish` and `llava-adapt export`: a run directory to the Hub, or to a Hub-ready folder.

Both are top-level verbs; `register(app)` mounts them on the root app.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    from llava_adapt.hub.publish import PublishResult

console = Console()

RUN_DIR_HELP = "A run directory whose last training stage (instruct or finetune) completed (`recipe run`'s run_dir)."
PUBLISH_RUN_DIR_HELP = (
    "A run directory (`recipe run`'s run_dir): its final model for --repo-id (instruct or finetune completed), its "
    "captions and conversations for --dataset (prepare and generate completed)."
)
CARD_DATASET_HELP = "Hub id of a training dataset for the model card (repeatable); default: what the domain declares."
DATASET_HELP = (
    "Publish the run's captions and generated conversations as this Hub dataset, OWNER/NAME (Parquet, loadable with "
    "datasets.load_dataset; created if missing). With --repo-id too, the model card names it."
)
LICENSE_HELP = "License id for the card (e.g. apache-2.0, llama2); default: the recipe's publish.license."
IMAGES_HELP = "With --dataset: embed the images (datasets Image feature) instead of referencing them by path."
DEIDENTIFIED_HELP = (
    "With --include-images: you checked that the images converted from DICOM (patient data) carry no identifiers, "
    "burned-in text included; without it they are refused."
)


def publish(
    run_dir: Path = typer.Argument(..., help=PUBLISH_RUN_DIR_HELP),
    repo_id: str | None = typer.Option(None, "--repo-id", help="Model repository, OWNER/NAME (created if missing)."),
    dataset: str | None = typer.Option(None, "--dataset", help=DATASET_HELP),
    private: bool = typer.Option(False, "--private", help="Create the repositories private."),
    revision: str | None = typer.Option(None, "--revision", help="Branch to commit to (created from main)."),
    merged: bool = typer.Option(False, "--merged", help="Upload full weights with the adapter merged in."),
    license: str | None = typer.Option(None, "--license", help=LICENSE_HELP),
    card_dataset: list[str] | None = typer.Option(None, "--card-dataset", help=CARD_DATASET_HELP),
    include_images: bool = typer.Option(False, "--include-images", help=IMAGES_HELP),
    deidentified: bool = typer.Option(False, "--i-have-deidentified", help=DEIDENTIFIED_HELP),
) -> None:
    """Upload a run to the Hugging Face Hub: the model (--repo-id: adapter or merged model, processor, model card,
    recipe, metrics) and/or its instruction data as a dataset (--dataset: Parquet and a dataset card).

    The token comes from HF_TOKEN or `hf auth login`; HF_ENDPOINT selects another Hub. Publishing the same run
    again makes no new commit; a failed upload is retried, and rerunning the command completes it.
    """
    from llava_adapt.hub.bundle import check_repo_id, domain_datasets
    from llava_adapt.hub.dataset import publish_dataset
    from llava_adapt.hub.publish import publish as publish_run
    from llava_adapt.hub.run_info import load_run

    if repo_id is None and dataset is None:
        raise typer.BadParameter("give --repo-id (the model), --dataset (the instruction data), or both")
    if (include_images or deidentified) and dataset is None:
        raise typer.BadParameter("--include-images and --i-have-deidentified apply to --dataset")
    if repo_id is not None:
        check_repo_id(repo_id)
        declared = domain_datasets(load_run(run_dir).recipe.domain)  # the run is checked before any upload
    if dataset is not None:
        result = publish_dataset(run_dir, dataset, include_images, deidentified, private, revision, license)
        _report("dataset", result)
    if repo_id is not None:
        datasets = [*(declared if card_dataset is None else card_dataset), *([dataset] if dataset else [])]
        result = publish_run(
            run_dir, repo_id, private=private, revision=revision, merged=merged, license=license, datasets=datasets
        )
        _report("model", result)


def _report(what: str, result: PublishResult) -> None:
    where = f"{result.repo_url} ({result.revision}), commit {result.commit_oid[:10]}"
    if result.changed:
        console.print(f"Published the {what}: {len(result.files)} files to {where}", highlight=False)
    else:
        console.print(f"Unchanged: the {what} repository already holds these files: {where}", highlight=False)
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
    card_dataset: list[str] | None = typer.Option(None, "--card-dataset", help=CARD_DATASET_HELP),
) -> None:
    """Write a run as the folder `publish` would upload: model files, processor, model card, recipe, metrics.

    With --merged the folder is a full model that AutoModelForImageTextToText and AutoProcessor load as is
    (what servers such as vLLM need when the projector was trained).
    """
    from llava_adapt.hub.bundle import write_bundle

    files = write_bundle(
        run_dir,
        out,
        repo_id or f"OWNER/{run_dir.resolve().name}",
        merged=merged,
        license=license,
        datasets=card_dataset,
    )
    console.print(f"Wrote {len(files)} files to {out}")


def register(app: typer.Typer) -> None:
    """Mount `publish` and `export` on the root `app`."""
    app.command(
        "publish",
        epilog="Example: llava-adapt publish runs/biomed --repo-id me/llava-med-lora --private (the model; "
        "--dataset me/biomed-instruct publishes its instruction data)",
    )(publish)
    app.command("export", epilog="Example: llava-adapt export runs/biomed --out merged/ --merged")(export)
