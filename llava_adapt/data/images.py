"""Images as `prepare` checks them: decoded once, completely, and converted faithfully where a plain RGB conversion
would not be.

`Image.verify()` reads the file's structure, not its pixels: a JPEG cut short, or a PNG whose chunks are valid but
whose pixel data is short, passes it and fails later, in the training collator. So every image is decoded here in
full (`Image.load()`), within a pixel budget (a header that claims 30000×30000 pixels is a decompression bomb, not a
figure: it is skipped before any pixel is read).

`convert("RGB")` — what training and evaluation do with an image — is faithful for 8-bit modes (RGB, grayscale,
palette, CMYK, YCbCr) but not for the others:

- high bit depth (16-bit grayscale PNG/TIFF, 32-bit integer, float): values above 255 are clipped, so a 12-bit
  radiograph turns almost entirely white. Such an image is windowed to 8 bits over its own value range, as a DICOM
  image without a window is;
- transparency (RGBA, LA, a palette with a transparent colour): the alpha channel is dropped and transparent areas
  show whatever colour they hold (often black). Such an image is composited onto white, as a viewer shows it;
- modes PIL cannot convert to RGB at all (LAB, HSV) would fail at training time: the record is skipped.

A converted image is written as an 8-bit RGB PNG (no metadata) and the record points at it; every other image is
used as it is.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from llava_adapt.run.atomic import atomic_path

# PIL's own decompression-bomb threshold (about 9459 x 9459 pixels): far above any figure, scan or photograph.
MAX_IMAGE_PIXELS = 89_478_485
FAITHFUL_MODES = {"RGB", "L", "P", "1", "CMYK", "YCbCr"}  # 8-bit modes `convert("RGB")` renders faithfully
HIGH_BIT_DEPTH = ("I;16", "I", "F")  # mode prefixes: I;16, I;16B, I;16L, I;16N, I, F

TOO_LARGE = "image too large (decompression bomb)"
CORRUPT = "corrupt or unreadable image"
UNSUPPORTED_MODE = "unsupported image mode"


@dataclass(frozen=True)
class CheckedImage:
    """An image that decoded completely.

    Args:
        mode (`str`): its PIL mode.
        size (`tuple[int, int]`): width and height.
        needs_conversion (`bool`): `convert("RGB")` would not render it faithfully (see the module docstring).
    """

    mode: str
    size: tuple[int, int]
    needs_conversion: bool


def _needs_conversion(image: Image.Image) -> bool:
    if image.mode.startswith(HIGH_BIT_DEPTH) or "A" in image.mode:
        return True
    return image.mode == "P" and "transparency" in image.info


def check_image(path: str | Path, max_pixels: int = MAX_IMAGE_PIXELS) -> CheckedImage | str:
    """Decode the image at `path` completely.

    Args:
        path (`str | Path`): the image file.
        max_pixels (`int`, defaults to `MAX_IMAGE_PIXELS`): a larger image (by its header) is not decoded.

    Returns:
        A `CheckedImage`, or the reason it cannot be used (a skip reason: `"image too large (decompression bomb)"`,
        `"corrupt or unreadable image"`, `"unsupported image mode"`).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.width * image.height > max_pixels:
                    return TOO_LARGE
                image.load()  # every pixel: truncated or short pixel data fails here, not in the collator
                if image.mode not in FAITHFUL_MODES and not _needs_conversion(image):
                    image.convert("RGB")  # LAB, HSV, ...: fails here rather than at training time
                return CheckedImage(image.mode, image.size, _needs_conversion(image))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return TOO_LARGE
    except (UnidentifiedImageError, OSError, SyntaxError, EOFError, IndexError, KeyError, TypeError, ValueError) as e:
        return UNSUPPORTED_MODE if "conversion" in str(e) else CORRUPT


def to_rgb(image: Image.Image) -> Image.Image:
    """`image` as 8-bit RGB, faithfully: high bit depth windowed over its value range, transparency composited onto
    white, other modes converted as PIL does.

    Args:
        image (`PIL.Image.Image`): a decoded image.
    """
    if image.mode.startswith(HIGH_BIT_DEPTH):
        values = np.asarray(image, dtype=np.float64)
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        scaled = np.zeros_like(values) if high <= low else (np.nan_to_num(values, nan=low) - low) / (high - low)
        grey = Image.fromarray(np.clip(np.rint(scaled * 255), 0, 255).astype(np.uint8))
        return grey.convert("RGB")
    if "A" in image.mode or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def write_converted(source: str | Path, images_dir: Path) -> str:
    """Convert the image at `source` with `to_rgb` into `images_dir/converted/` and return its path relative to
    `images_dir`. The file name is a hash of the source path (which may carry an identifier), not the path itself.

    Args:
        source (`str | Path`): an image `check_image` accepted with `needs_conversion`.
        images_dir (`Path`): the run's image folder (`data/images/`).
    """
    name = hashlib.sha1(str(source).encode("utf-8")).hexdigest()[:16]
    relative = f"converted/{name}.png"
    with Image.open(source) as image, atomic_path(images_dir / relative) as tmp:
        to_rgb(image).save(tmp, format="PNG")
    return relative
