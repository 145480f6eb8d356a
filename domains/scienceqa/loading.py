"""From a recipe's `path`/`split`/`layout` to problems with usable image paths (shared by sources and benchmarks).

Image paths follow the `SourceContext` rule: a file read in place is relative to `ctx.data_root`; a file this
domain wrote (an image embedded in parquet, the blank placeholder) is relative to `ctx.output_dir`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from llava_adapt.plugin import Skip, SourceContext, relative_to_root, root_path, within

from .images import ESCAPES, blank_image, write_image_bytes
from .layouts import Layout, LayoutError, detect_layout, read_lupantech, read_parquet
from .problems import Problem

NoImage = Literal["blank", "skip"]
NO_IMAGE = "no image"


@dataclass(frozen=True)
class Located:
    """A problem and the image path a record should carry (`None`: it has no image and none was asked for)."""

    problem: Problem
    image: str | None


def dataset_path(path: str, ctx: SourceContext) -> Path:
    """Resolve a recipe's `path` against `ctx.data_root`; it must stay inside it.

    Raises:
        LayoutError: the path leaves the data root or does not exist.
    """
    root = root_path(ctx.data_root)
    full = within(root, Path(path).expanduser())  # folders linked into the data root count as inside it
    if full is None:
        raise LayoutError(f"ScienceQA path {path!r} escapes the data root {root}")
    if not full.exists():
        raise LayoutError(f"ScienceQA path {full} does not exist (relative to the data root {root})")
    return full


def iter_problems(
    path: str, split: str, layout: Layout, ctx: SourceContext, no_image: NoImage
) -> Iterator[Located | Skip]:
    """Yield the problems of `split`, with image paths valid for the pipeline, or a `Skip` with its reason.

    Args:
        path (`str`): the dataset, relative to `ctx.data_root` (a folder, a parquet file, a LLaVA JSON file).
        split (`str`): the split to read.
        layout (`"auto" | "lupantech" | "parquet" | "llava"`): the file layout, `auto` to detect it.
        ctx (`SourceContext`): data root, output folder and seed.
        no_image (`"blank" | "skip"`): give image-less problems the blank placeholder, or skip them (`"no image"`).
    """
    full = dataset_path(path, ctx)
    kind = detect_layout(full, split) if layout == "auto" else layout
    if kind == "lupantech":
        problems = read_lupantech(full, split)
    elif kind == "parquet":
        problems = read_parquet(full, split)
    else:
        raise LayoutError(f"{full}: layout {kind!r} holds benchmark questions only; use the scienceqa benchmark")
    output_dir = Path(ctx.output_dir)
    for problem in problems:
        if isinstance(problem, Skip):
            yield problem
            continue
        if problem.image_path is not None:
            image = relative_to_root(ctx.data_root, full / problem.image_path)
            if image is None:
                raise LayoutError(f"{full / problem.image_path}: {ESCAPES} {root_path(ctx.data_root)}")
            yield Located(problem, image)
        elif problem.image_bytes is not None:
            stem = f"scienceqa/{problem.split or split}/{problem.pid}"
            written, reason = write_image_bytes(problem.image_bytes, output_dir, stem)
            yield Located(problem, written) if written else Skip(id=problem.pid, reason=reason or "corrupt image")
        elif problem.has_image:
            yield Skip(id=problem.pid, reason="image file missing")
        elif no_image == "blank":
            yield Located(problem, blank_image(output_dir))
        else:
            yield Skip(id=problem.pid, reason=NO_IMAGE)
