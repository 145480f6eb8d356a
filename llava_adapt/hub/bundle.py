"""The folder a run is published as: the model files, our model card, the recipe and the metrics.

    README.md                 the model card (card.py): replaces the README that PEFT/TRL wrote
    recipe.yaml               the resolved recipe of the run
    eval/<benchmark>/metrics.json
    adapter_config.json       (adapter) base_model_name_or_path rewritten to the Hub id, or null: never a local path
    adapter_model.safetensors (adapter) LoRA weights + the projector
    config.json, model.safetensors, generation_config.json   (full or merged weights)
    processor_config.json, tokenizer.json, tokenizer_config.json, chat_template.jinja, ...

`llava-adapt export` writes this folder to disk; `llava-adapt publish` writes it to a temporary folder and uploads it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from llava_adapt.domain import HUB_DATASETS, Domain
from llava_adapt.hub.card import Artefact, build_model_card
from llava_adapt.hub.errors import PublishInputError
from llava_adapt.hub.export import export_merged
from llava_adapt.hub.run_info import RunInfo, hub_id, load_run
from llava_adapt.run.atomic import atomic_path

logger = logging.getLogger(__name__)

# `Domain.extras` key under which a domain plugin may list the Hub ids of its training datasets.
DATASETS_EXTRA = HUB_DATASETS


def check_repo_id(repo_id: str) -> str:
    """Return `repo_id` if it is `OWNER/NAME`.

    Raises:
        PublishError: it is not.
    """
    problem = None
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        problem = str(exc).split(":")[0]
    if problem or repo_id.count("/") != 1:
        raise PublishInputError(
            f"--repo-id {repo_id!r} must be OWNER/NAME: your user or organisation name, a slash, a repository name"
            + (f" ({problem})" if problem else "")
        )
    return repo_id


def _installed_domain(domain: str, advice: str) -> Domain | None:
    """The installed domain plugin `domain`, or `None` (with a warning ending in `advice`) when it cannot be loaded."""
    from llava_adapt.registry import DomainConflictError, DomainLoadError, DomainNotFoundError, get_domain

    try:
        return get_domain(domain)
    except (DomainNotFoundError, DomainLoadError, DomainConflictError) as exc:
        logger.warning("cannot read domain %r for the card (%s); %s", domain, exc, advice)
        return None


def domain_datasets(domain: str) -> list[str]:
    """The Hub datasets an installed domain plugin declares in `extras["hub_datasets"]` (empty if none or absent)."""
    plugin = _installed_domain(domain, "pass its datasets with --card-dataset")
    return list(plugin.extras.get(DATASETS_EXTRA, ())) if plugin else []


def domain_notices(domain: str) -> list[str]:
    """The paragraphs an installed domain plugin wants on every model card (`Domain.card_notices`; empty if none)."""
    plugin = _installed_domain(domain, "its card notices (e.g. a medical disclaimer) are left out: install it")
    return list(plugin.card_notices) if plugin else []


def _place(src: Path, dst: Path, link: bool) -> None:
    """Copy `src` to `dst`, or hard-link it when `link` (falling back to a copy across file systems)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if link:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass
    shutil.copy2(src, dst)


def _adapter_config(run: RunInfo) -> str:
    """`adapter_config.json` with `base_model_name_or_path` set to a Hub id, or null when there is none."""
    config = json.loads((run.model_dir / "adapter_config.json").read_text(encoding="utf-8"))
    base = hub_id(config.get("base_model_name_or_path"))
    if base is None and run.recipe.model.source == "llava":
        base = run.base_model.hub_id
    config["base_model_name_or_path"] = base
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def write_bundle(
    run_dir: str | Path,
    out_dir: str | Path,
    repo_id: str,
    merged: bool = False,
    license: str | None = None,
    datasets: Sequence[str] | None = None,
    revision: str | None = None,
    link_files: bool = False,
) -> list[str]:
    """Write the publishable folder of a run, atomically.

    Args:
        run_dir (`str | Path`): a run directory whose `instruct` (or, when it runs it, `finetune`) stage completed.
        out_dir (`str | Path`): the folder to write; replaced if it exists.
        repo_id (`str`): the repository the card is written for, `OWNER/NAME`.
        merged (`bool`, defaults to `False`): merge an adapter into its base and ship full weights
            (`export_merged`); without it an adapter run ships the adapter.
        license (`str`, *optional*): a Hub license id; defaults to the recipe's `publish.license`.
        datasets (`Sequence[str]`, *optional*): Hub ids of the training datasets; defaults to what the domain
            plugin declares in `extras["hub_datasets"]`.
        revision (`str`, *optional*): the branch the card's loading code names.
        link_files (`bool`, defaults to `False`): hard-link the run's files instead of copying them (for a temporary
            folder that is uploaded and deleted: saves the disk space of a second copy of the weights).

    Returns:
        The paths of the written files, relative to `out_dir`, sorted.

    Raises:
        PublishError: the run is not ready (says which stage to run), or a dataset id is invalid.
    """
    check_repo_id(repo_id)
    run = load_run(run_dir)
    datasets = list(domain_datasets(run.recipe.domain) if datasets is None else datasets)
    for dataset in datasets:
        if hub_id(dataset) != dataset:
            raise PublishInputError(f"dataset {dataset!r} is not a Hub dataset id (OWNER/NAME)")
    artefact: Artefact = "merged" if merged and run.kind == "adapter" else run.kind
    if license is None and run.recipe.publish.license is None:
        logger.warning("no license given (--license or publish.license): the card will not name one")
    notices = domain_notices(run.recipe.domain)
    card = build_model_card(run, repo_id, artefact, license=license, datasets=datasets, revision=revision,
                            notices=notices)  # fmt: skip
    with atomic_path(out_dir) as tmp:
        if artefact == "merged":
            export_merged(run.layout.root, tmp)
        else:
            tmp.mkdir()
            for path in run.model_files():
                if path.name == "adapter_config.json":
                    (tmp / path.name).write_text(_adapter_config(run), encoding="utf-8")
                else:
                    _place(path, tmp / path.name, link_files)
        (tmp / "README.md").write_text(str(card), encoding="utf-8")
        _place(run.layout.recipe, tmp / "recipe.yaml", link=False)
        for result in run.results:
            metrics = run.layout.benchmark_dir(result.name) / "metrics.json"
            _place(metrics, tmp / "eval" / result.name / "metrics.json", link=False)
        files = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
    return files
