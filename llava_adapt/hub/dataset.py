"""A run's instruction data as a Hub dataset repository (`llava-adapt publish RUN_DIR --dataset OWNER/NAME`).

LLaVA and LLaVA-Med released their instruction data by hand; this writes what `prepare` and `generate` made into the
layout the `datasets` library reads, and uploads it like a model (one commit, retried, idempotent; see
`llava_adapt.hub.publish`):

    README.md                                     the dataset card (`dataset_card.py`), with the configs YAML
    conversations/train-00000-of-00001.parquet    the default config: id, image, conversations, prompt_type
    captions/train-00000-of-00001.parquet         id, image, caption
    rejects/train-00000-of-00001.parquet          id, record_id, prompt_type, image, reason (when any)

so `load_dataset(REPO)` gives the conversations and `load_dataset(REPO, "captions")` the captions. Shards hold at
most `MAX_SHARD_BYTES`. What never leaves the run: the rejects' raw responses and details (a rejected answer is the
teacher's text, which may quote what it was shown), the records' context and labels, and every absolute path — an
`image` is a path relative to the run's `data/images/` (files `prepare` wrote) or to `data.root` (files read in
place). Images are embedded (the `datasets` `Image` feature) only with `include_images`; images the domain marks as
derived from patient data (`Domain.extras[PATIENT_IMAGES]`: path patterns, e.g. biomed's converted DICOM
`dicom/*`) then need `deidentified=True`, the user's statement that they checked them.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llava_adapt.data.jsonl import read_jsonl
from llava_adapt.data.paths import relative_to_root
from llava_adapt.domain import PATIENT_IMAGES, Domain
from llava_adapt.hub.bundle import check_repo_id
from llava_adapt.hub.errors import PublishError, PublishInputError
from llava_adapt.hub.publish import PublishResult, Target, hub_api, upload
from llava_adapt.hub.run_info import read_run, stage_problem
from llava_adapt.recipe.schema import Recipe
from llava_adapt.run.layout import RunLayout
from llava_adapt.run.manifest import Manifest

logger = logging.getLogger(__name__)

CONFIGS = ("conversations", "captions", "rejects")
OWNED = ("README.md", *(f"{config}/*" for config in CONFIGS))
MAX_SHARD_BYTES = 500 << 20  # the `datasets` library's own default shard size for the Hub


@dataclass
class DataRun:
    """A run directory whose `prepare` and `generate` stages completed.

    Args:
        layout (`RunLayout`): the run directory.
        recipe (`Recipe`): its recipe.
        manifest (`Manifest`): its manifest.
        domain (`Domain | None`): the installed domain plugin (`None` when it cannot be loaded).
        counts (`dict[str, Counter[str]]`): filled while writing: rows per config, rejects by reason, prompt types.
    """

    layout: RunLayout
    recipe: Recipe
    manifest: Manifest
    domain: Domain | None
    counts: dict[str, Counter[str]] = field(default_factory=dict)

    def image_ref(self, image: str | None) -> tuple[str | None, Path | None]:
        """The path an image is published under (relative to `data/images/` or to `data.root`, never absolute) and
        its file; `(None, None)` for a text-only sample."""
        if not image:
            return None, None
        path = Path(image)
        if not path.is_absolute():
            return path.as_posix(), self.layout.images_dir / path
        return relative_to_root(self.recipe.data.root, path) or path.name, path

    def patient_image(self, ref: str | None) -> bool:
        """Whether the domain marks the image at `ref` as derived from patient data."""
        patterns = self.domain.extras.get(PATIENT_IMAGES, ()) if self.domain else ()
        return ref is not None and any(fnmatch.fnmatchcase(ref, pattern) for pattern in patterns)


def load_data_run(run_dir: str | Path) -> DataRun:
    """Read and check a run directory for dataset publishing.

    Raises:
        PublishError: the folder is not a run directory, or `prepare` / `generate` has not completed (the message
            says what to run).
    """
    layout, manifest, recipe = read_run(run_dir)
    for stage, path in (("prepare", layout.captions), ("generate", layout.instruct_data)):
        problem = stage_problem(manifest, stage)
        if problem or not path.is_file():
            raise PublishError(
                f"the {stage} stage of {layout.root} has not completed ({problem or f'{path} is missing'}); the "
                f"dataset is what prepare and generate write: llava-adapt recipe run {layout.recipe} "
                f"--run-dir {layout.root}"
            )
    from llava_adapt.registry import DomainConflictError, DomainLoadError, DomainNotFoundError, get_domain

    try:
        domain = get_domain(recipe.domain)
    except (DomainNotFoundError, DomainConflictError, DomainLoadError) as exc:
        logger.warning("cannot load domain %r (%s); the dataset card will not list its prompts", recipe.domain, exc)
        domain = None
    return DataRun(layout, recipe, manifest, domain)


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    for _, row in read_jsonl(path):
        yield row


def _conversations(run: DataRun, embed: bool) -> Iterator[dict[str, Any]]:
    counts = run.counts.setdefault("prompt_types", Counter())
    for row in _rows(run.layout.instruct_data):
        ref, file = run.image_ref(row.get("image"))
        counts[str(row.get("source") or "")] += 1
        turns = [{"from": str(t.get("from", "")), "value": str(t.get("value", ""))} for t in row["conversations"]]
        yield {"id": str(row["id"]), "image": _image(ref, file, embed), "conversations": turns,
               "prompt_type": str(row.get("source") or "")}  # fmt: skip


def _captions(run: DataRun, embed: bool) -> Iterator[dict[str, Any]]:
    for row in _rows(run.layout.captions):
        ref, file = run.image_ref(row.get("image"))
        yield {"id": str(row["id"]), "image": _image(ref, file, embed), "caption": str(row["caption"])}


def _rejects(run: DataRun) -> Iterator[dict[str, Any]]:
    reasons = run.counts.setdefault("rejected", Counter())
    if not run.layout.instruct_rejects.is_file():
        return
    for row in _rows(run.layout.instruct_rejects):  # never `response` or `detail`: the teacher's raw text
        reasons[str(row.get("reason") or "unknown")] += 1
        yield {"id": str(row["id"]), "record_id": str(row.get("record_id") or ""),
               "prompt_type": str(row.get("prompt_type") or ""), "image": run.image_ref(row.get("image"))[0],
               "reason": str(row.get("reason") or "unknown")}  # fmt: skip


def _image(ref: str | None, file: Path | None, embed: bool) -> Any:
    if not embed or file is None:
        return ref
    try:
        return {"bytes": file.read_bytes(), "path": ref}
    except OSError as exc:
        raise PublishError(f"cannot read the image {file} to embed it ({exc.strerror}); rerun prepare") from None


def _features(config: str, embed: bool) -> Any:
    from datasets import Features, Image, List, Value

    text = Value("string")
    image = Image() if embed and config != "rejects" else text
    columns = {
        "conversations": {"id": text, "image": image, "conversations": List({"from": text, "value": text}),
                          "prompt_type": text},
        "captions": {"id": text, "image": image, "caption": text},
        "rejects": {"id": text, "record_id": text, "prompt_type": text, "image": text, "reason": text},
    }  # fmt: skip
    return Features(columns[config])


def _row_bytes(row: dict[str, Any]) -> int:
    image = row.get("image")
    return len(json.dumps({k: v for k, v in row.items() if k != "image"})) + (
        len(image["bytes"]) if isinstance(image, dict) else len(image or "")
    )


def write_parquet(rows: Iterable[dict[str, Any]], features: Any, folder: Path, max_shard_bytes: int) -> list[str]:
    """Write rows as `train-0000i-of-0000N.parquet` shards of at most about `max_shard_bytes` each.

    Args:
        rows (`Iterable[dict]`): the rows, in order.
        features (`datasets.Features`): their columns.
        folder (`Path`): the config's folder.
        max_shard_bytes (`int`): start a new shard past this many bytes.

    Returns:
        The shard file names, in order (none when there are no rows).
    """
    from datasets import Dataset

    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    shard: list[dict[str, Any]] = []
    size = 0

    def flush() -> None:
        path = folder / f".shard-{len(written):05d}.parquet"
        Dataset.from_list(shard, features=features).to_parquet(str(path))
        written.append(path)

    for row in rows:
        shard.append(row)
        size += _row_bytes(row)
        if size >= max_shard_bytes:
            flush()
            shard, size = [], 0
    if shard:
        flush()
    names = [f"train-{i:05d}-of-{len(written):05d}.parquet" for i in range(len(written))]
    for path, name in zip(written, names, strict=True):
        path.rename(folder / name)
    return names


def check_images(run: DataRun, include_images: bool, deidentified: bool) -> None:
    """Refuse to embed images derived from patient data unless the user states they are de-identified.

    Raises:
        PublishError: `include_images` without `deidentified` when some image is marked as patient data, or when
            the domain (which marks them) cannot be loaded.
    """
    if not include_images or deidentified:
        return
    if run.domain is None:
        raise PublishInputError(
            f"--include-images: the domain {run.recipe.domain!r} is not installed, so which images come from patient "
            "data (DICOM) cannot be told; install it, publish without --include-images (images are then referenced "
            "by path), or pass --i-have-deidentified once you have checked every image"
        )
    refs = (run.image_ref(row.get("image"))[0] for path in (run.layout.captions, run.layout.instruct_data)
            for row in _rows(path))  # fmt: skip
    derived = sum(run.patient_image(ref) for ref in dict.fromkeys(refs))
    if derived:
        raise PublishInputError(
            f"--include-images would upload {derived} images converted from DICOM (patient data); pixels can carry "
            "burned-in identifiers that header redaction does not remove. Publish without --include-images (images "
            "are then referenced by path), or pass --i-have-deidentified once you have checked every image"
        )


def write_dataset(run: DataRun, out: Path, repo_id: str, include_images: bool = False, license: str | None = None,
                  max_shard_bytes: int = MAX_SHARD_BYTES) -> list[str]:  # fmt: skip
    """Write the dataset repository's files into `out` (see the module docstring).

    Args:
        run (`DataRun`): the checked run (`load_data_run`; images already checked with `check_images`).
        out (`Path`): an empty or missing folder.
        repo_id (`str`): the dataset repository, `OWNER/NAME` (the card's loading code names it).
        include_images (`bool`, defaults to `False`): embed the images instead of referencing them by path.
        license (`str`, *optional*): the data's Hub license id for the card (`unknown` when not given).
        max_shard_bytes (`int`, defaults to `MAX_SHARD_BYTES`): the largest Parquet shard.

    Returns:
        The files written, relative to `out`, sorted.
    """
    from llava_adapt.hub.dataset_card import build_dataset_card

    files: dict[str, list[str]] = {}
    tables = {"conversations": _conversations(run, include_images), "captions": _captions(run, include_images),
              "rejects": _rejects(run)}  # fmt: skip
    for config, rows in tables.items():
        counted = _counting(rows, run.counts.setdefault("rows", Counter()), config)
        names = write_parquet(counted, _features(config, include_images), out / config, max_shard_bytes)
        if names:
            files[config] = [f"{config}/{name}" for name in names]
    card = build_dataset_card(run, repo_id, list(files), include_images, license)
    (out / "README.md").write_text(str(card), encoding="utf-8")
    return sorted(["README.md", *(name for names in files.values() for name in names)])


def _counting(rows: Iterable[dict[str, Any]], counter: Counter[str], key: str) -> Iterator[dict[str, Any]]:
    for row in rows:
        counter[key] += 1
        yield row


def publish_dataset(
    run_dir: str | Path,
    repo_id: str,
    include_images: bool = False,
    deidentified: bool = False,
    private: bool = False,
    revision: str | None = None,
    license: str | None = None,
    max_attempts: int = 3,
    retry_wait: float = 2.0,
) -> PublishResult:
    """Publish a run's captions and generated conversations as a Hub dataset repository.

    Args:
        run_dir (`str | Path`): a run directory whose `prepare` and `generate` stages completed.
        repo_id (`str`): the dataset repository, `OWNER/NAME`; created if it does not exist.
        include_images (`bool`, defaults to `False`): embed the images (`Image` feature) instead of their paths.
        deidentified (`bool`, defaults to `False`): the user states that images derived from patient data were
            checked and carry no identifiers; needed to embed them.
        private (`bool`, defaults to `False`): create the repository private (an existing one keeps its visibility).
        revision (`str`, *optional*): the branch to commit to, created from `main` if needed; defaults to `main`.
        license (`str`, *optional*): the data's Hub license id for the card; defaults to the recipe's
            `publish.license`, else `unknown`.
        max_attempts (`int`, defaults to `3`): attempts before giving up on transient errors.
        retry_wait (`float`, defaults to `2.0`): seconds before the second attempt, doubled after each failure.

    Raises:
        PublishError: the run is not ready, images from patient data would be embedded without `deidentified`, no
            token is available, or the upload failed; the message says what to do and never contains the token.
    """
    check_repo_id(repo_id)
    run = load_data_run(run_dir)
    check_images(run, include_images, deidentified)
    api = hub_api()
    with tempfile.TemporaryDirectory(prefix=".publish-dataset-", dir=run.layout.root) as tmp:
        folder = Path(tmp)
        files = write_dataset(run, folder, repo_id, include_images, license or run.recipe.publish.license)
        what = "with images" if include_images else "images by path"
        message = f"Publish the instruction data of llava-adapt run {run.layout.root.resolve().name} ({what})"
        target = Target(repo_id, "dataset", private, revision or "main", OWNED)
        return upload(api, target, folder, files, message, max_attempts, retry_wait)
