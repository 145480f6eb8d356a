"""Paths the `general` sources read: input files and image folders that must stay inside the data root."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

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
    root = data_root.resolve()
    resolved = (root / path).resolve()
    if not resolved.is_relative_to(root):
        raise ValueError(f"{what} {path!r} is outside the data root {data_root}; paths must stay inside it")
    exists = resolved.is_dir() if kind == "folder" else resolved.is_file()
    if not exists:
        raise FileNotFoundError(f"{what} {resolved} is not an existing {kind} (data root {data_root})")
    return resolved


def image_path(root: Path, image_dir: Path, name: str) -> str | None:
    """The path of an image named relative to `image_dir`, relative to the data root; `None` when it escapes.

    The check is on the path's text (`..`, absolute paths), so it costs no file-system call per image; `prepare`
    resolves symbolic links when it checks that the file exists.

    Args:
        root (`Path`): the resolved data root.
        image_dir (`Path`): the resolved image folder (inside `root`, see `input_path`).
        name (`str`): the image's path as the annotation file gives it.
    """
    full = Path(os.path.normpath(image_dir / name))
    return full.relative_to(root).as_posix() if full.is_relative_to(root) else None
