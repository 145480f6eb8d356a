"""Small file helpers shared by the biomed sources: paths that must stay inside a root, atomic image writes."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from llava_adapt.plugin import OutsideRootError, atomic_path, within


def inside(root: Path, relative: str | Path) -> Path | None:
    """Resolve `relative` against `root`; return the path, or `None` when it escapes `root`. Folders linked into
    `root` count as inside it; `..` out of it and absolute paths elsewhere do not (`llava_adapt.data.paths.within`).

    Args:
        root (`Path`): the folder the path must stay in.
        relative (`str | Path`): a path relative to `root` (an absolute path is accepted only inside `root`).
    """
    return within(root, relative)


def resolve_input(data_root: Path, path: str, what: str) -> Path:
    """Resolve a recipe-given input path against the data root.

    Args:
        data_root (`Path`): the source's data root.
        path (`str`): the recipe's path (relative to `data_root`, or absolute inside it).
        what (`str`): how to name the input in errors (e.g. `"dicom folder"`).

    Raises:
        OutsideRootError: the path escapes the data root (a `ValueError`, printed as one line).
        FileNotFoundError: the path does not exist.
    """
    resolved = inside(data_root, path)
    if resolved is None:
        raise OutsideRootError(f"{what} {path!r} is outside the data root {data_root}; paths must stay inside it")
    if not resolved.exists():
        raise FileNotFoundError(f"{what} {resolved} does not exist (data root {data_root})")
    return resolved


def pseudonym(text: str, prefix: str) -> str:
    """A stable id that does not reveal `text` (a file path may carry a patient id): `prefix-<12 hex>`."""
    return f"{prefix}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:12]}"


def save_png(pixels: np.ndarray | Image.Image, path: Path, max_size: int | None = None) -> None:
    """Atomically write an RGB PNG without any metadata chunk.

    Args:
        pixels (`np.ndarray | PIL.Image.Image`): `(rows, cols, 3)` uint8 array or an image.
        path (`Path`): where to write it (folders are created).
        max_size (`int | None`, defaults to `None`): shrink so that the longer side is at most this many pixels.
    """
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    image = image.convert("RGB")
    if max_size is not None and max(image.size) > max_size:
        scale = max_size / max(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.LANCZOS)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def decode_image_bytes(data: bytes) -> Image.Image | None:
    """Decode encoded image bytes (PNG, JPEG, ...) into an RGB image, or `None` when they are corrupt."""
    try:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()
        with Image.open(io.BytesIO(data)) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None
