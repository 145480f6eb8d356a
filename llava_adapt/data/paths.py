"""Paths that recipes and data files name, kept inside the folder they are relative to — through the links the user
made there.

A data file (an annotation JSON, a conversation file, a Parquet row) or a recipe names files by path relative to a
root (`data.root`, or a dataset folder inside it). Such a path may not leave the root: an absolute path elsewhere,
or `..` that climbs out of it, is refused, so that a crafted file cannot make the pipeline read files from anywhere
on the machine (and copy them into a run directory or a Hub repository). Symbolic links inside the root are another
matter: LLaVA setups commonly link dataset folders into one data folder (`data/coco -> /mnt/datasets/coco`), and
the user made those links. So a path is checked as written, normalised against the root without following links;
only a path with `..` in it is also resolved through the file system, so that `a_link/../..` cannot climb out.
"""

from __future__ import annotations

import os
from pathlib import Path

from llava_adapt.errors import InputError


class OutsideRootError(InputError, ValueError):
    """A path a recipe or data file gives leaves the folder it must stay in (the message names both)."""


def root_path(root: str | Path) -> Path:
    """`root` as an absolute path, `~` expanded and links kept (the base every path below is measured from)."""
    return Path(os.path.abspath(os.path.expanduser(root)))


def within(root: str | Path, path: str | Path) -> Path | None:
    """The absolute path that `path` names inside `root`, or `None` when it leaves `root`.

    Args:
        root (`str | Path`): the folder the path must stay in; links inside it are followed.
        path (`str | Path`): relative to `root`, or absolute (accepted only inside `root`, as given or as `root`
            resolves).

    Returns:
        The path under `root_path(root)`, normalised but with links kept, so that `relative_to_root` can express
        it relative to `root`.
    """
    base = root_path(root)
    candidate = Path(os.path.normpath(base / path))
    if ".." in Path(path).parts and not Path(os.path.realpath(base / path)).is_relative_to(os.path.realpath(base)):
        return None
    if candidate.is_relative_to(base):
        return candidate
    real_base = Path(os.path.realpath(base))
    if candidate.is_relative_to(real_base):  # an absolute path through the root's own link target
        return base / candidate.relative_to(real_base)
    return None


def relative_to_root(root: str | Path, path: str | Path) -> str | None:
    """`path` (relative to `root`, or absolute) as a POSIX path relative to `root`, or `None` when it leaves it."""
    inside = within(root, path)
    return None if inside is None else inside.relative_to(root_path(root)).as_posix()


def resolve_image(image: str, output_dir: Path, data_root: Path) -> tuple[str | None, str | None]:
    """Check where a record's image lives.

    Args:
        image (`str`): the path the source gave (relative to `output_dir` or `data_root`, or absolute).
        output_dir (`Path`): the run's image folder.
        data_root (`Path`): the folder the source reads.

    Returns:
        `(path to store, None)` or `(None, skip reason)`.
    """
    written = relative_to_root(output_dir, image)
    if written is not None and (output_dir / written).is_file():
        return written, None
    candidate = within(data_root, image)  # links inside the data root are followed; `..` out of it is not
    if candidate is None:
        return None, "image path escapes the data root"
    if not candidate.is_file():
        return None, "image file missing"
    return str(candidate), None
