"""Where a ScienceQA problem's image lives, and the two kinds of image files this domain writes.

- Layouts that keep images as files (lupantech) are read in place; a path that leaves the dataset folder is
  rejected with the reason `"image path escapes the data root"`, a missing file with `"image file missing"`.
- Layouts that embed images (the Hugging Face parquet files) are written out under the loader's `output_dir`.
- Problems without an image (about half of ScienceQA) get one shared blank placeholder when the caller asks for
  it. LLaVA trains text-only ScienceQA samples with an all-zero *normalised* image tensor, which is the vision
  tower's mean pixel; the placeholder is that colour (CLIP's mean, `(123, 117, 104)`), so a CLIP vision tower sees
  exactly what LLaVA's did. At inference LLaVA passes no image at all for these problems.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from llava_adapt.plugin import atomic_path, within

BLANK_IMAGE = "scienceqa_blank.png"
BLANK_COLOUR = (123, 117, 104)  # round(255 * CLIP image mean): what a zero normalised tensor decodes to
BLANK_SIZE = 336

ESCAPES = "image path escapes the data root"
MISSING = "image file missing"
CORRUPT = "corrupt or unreadable image"


def find_image(dataset_dir: Path, candidates: list[str]) -> tuple[Path | None, str | None]:
    """Return the first candidate path (relative to `dataset_dir`) that is an existing file inside it.

    Args:
        dataset_dir (`Path`): the dataset folder; no candidate may resolve outside it.
        candidates (`list[str]`): relative paths to try, in order.

    Returns:
        `(absolute path, None)`, or `(None, reason)` with reason `ESCAPES` (any candidate leaves the folder) or
        `MISSING`.
    """
    for candidate in candidates:
        full = within(dataset_dir, candidate)  # folders linked into the dataset folder count as inside it
        if full is None:
            return None, ESCAPES
        if full.is_file():
            return full, None
    return None, MISSING


def write_image_bytes(data: bytes, output_dir: Path, stem: str) -> tuple[str | None, str | None]:
    """Write an embedded image under `output_dir`, keeping its encoding.

    Args:
        data (`bytes`): the encoded image (PNG, JPEG, ...).
        output_dir (`Path`): the loader's output folder.
        stem (`str`): the file's path under `output_dir` without suffix, e.g. `"scienceqa/test/test_00012"`.

    Returns:
        `(path relative to output_dir, None)`, or `(None, CORRUPT)` when the bytes do not decode.
    """
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = (im.format or "PNG").lower()
            im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None, CORRUPT
    suffix = {"jpeg": ".jpg"}.get(fmt, f".{fmt}")
    relative = f"{stem}{suffix}"
    target = output_dir / relative
    if not (target.is_file() and target.stat().st_size == len(data) and target.read_bytes() == data):
        with atomic_path(target) as tmp:
            tmp.write_bytes(data)
    return relative, None


def blank_image(output_dir: Path) -> str:
    """Write (once) the placeholder image for problems without one; return its path relative to `output_dir`."""
    target = output_dir / BLANK_IMAGE
    if not target.is_file():
        with atomic_path(target) as tmp:
            Image.new("RGB", (BLANK_SIZE, BLANK_SIZE), BLANK_COLOUR).save(tmp, format="PNG")
    return BLANK_IMAGE
