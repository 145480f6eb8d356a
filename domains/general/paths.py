"""Paths the `general` sources read: input files and image folders that must stay inside the data root."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from llava_adapt.plugin import OutsideRootError, relative_to_root, within

ESCAPES = "image path escapes the data root"  # the same reason `prepare` counts, so the manifest adds them up


def input_path(data_root: Path, path: str, what: str, kind: Literal["file", "folder"] = "file") -> Path:
    """Resolve a path from the recipe's `data.args` against the data root.

    Args:
        data_root (`Path`): the source's data root (`data.root`).
        path (`str`): the recipe's path, relative to `data_root` (an absolute path is accepted inside it).
        what (`str`): how to name the input in errors, e.g. `"COCO captions file"`.
        kind (`"file" | "folder"`, defaults to `"file"`): what the path must be.

    Raises:
        ValueError: the path escapes the data root.
        FileNotFoundError: the path is not an existing file (or folder).
    """
    resolved = within(data_root, path)  # folders linked into the data root count as inside it
    if resolved is None:
        raise OutsideRootError(f"{what} {path!r} is outside the data root {data_root}; paths must stay inside it")
    exists = resolved.is_dir() if kind == "folder" else resolved.is_file()
    if not exists:
        raise FileNotFoundError(f"{what} {resolved} is not an existing {kind} (data root {data_root})")
    return resolved


def image_path(root: Path, image_dir: Path, name: str) -> str | None:
    """The path of an image named relative to `image_dir`, relative to the data root; `None` when it escapes.

    The check is on the path's text (`..`, absolute paths; `llava_adapt.data.paths.within`), so it costs no
    file-system call per image unless the name holds `..`; folders linked into the data root count as inside it.

    Args:
        root (`Path`): the data root.
        image_dir (`Path`): the image folder (inside `root`, see `input_path`).
        name (`str`): the image's path as the annotation file gives it.
    """
    full = within(image_dir, name)
    return None if full is None else relative_to_root(root, full)
