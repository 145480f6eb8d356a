"""LLaVA-1.5's `image_aspect_ratio`: pad an image to a square before the vision tower sees it, or centre-crop.

LLaVA-1.5 and LLaVA-Med v1.5 train and evaluate with `pad` (`expand2square`: the shorter side is filled with the
processor's mean colour, so nothing of the image is lost), while llava-hf's converted processors centre-crop, which
drops the borders of a non-square image (the edge of a radiograph, a panel of a compound figure). With `pad`, the
processor's image processor is swapped for transformers' own `LlavaImageProcessor` with `do_pad=True` and the
same sizes and normalisation, so a saved run reloads with the padding in stock transformers (`AutoProcessor`).
"""

from __future__ import annotations

import logging
from typing import Literal

from transformers import ProcessorMixin
from transformers.models.llava.image_processing_pil_llava import LlavaImageProcessorPil

log = logging.getLogger("llava_adapt")

ImageAspectRatio = Literal["pad", "crop"]

# The settings that carry over from the checkpoint's image processor to the padding one.
_CARRIED = (
    "size",
    "crop_size",
    "do_resize",
    "resample",
    "do_center_crop",
    "do_rescale",
    "rescale_factor",
    "do_normalize",
    "image_mean",
    "image_std",
    "do_convert_rgb",
)


def set_image_aspect_ratio(processor: ProcessorMixin, mode: ImageAspectRatio) -> ProcessorMixin:
    """Make `processor` pad images to a square (`"pad"`) or centre-crop them (`"crop"`), in place.

    Args:
        processor (`ProcessorMixin`): a LLaVA processor (its `image_processor` is replaced when the mode changes).
        mode (`"pad" | "crop"`): `pad` = LLaVA-1.5's `expand2square` with the processor's mean colour, then the
            checkpoint's own resize (and crop, which is then a no-op on the square); `crop` = no padding.

    Returns:
        `ProcessorMixin`: the same processor.
    """
    if mode not in ("pad", "crop"):
        raise ValueError(f"image_aspect_ratio must be 'pad' or 'crop', not {mode!r}")
    current = processor.image_processor
    if getattr(current, "image_grid_pinpoints", None):
        log.debug("image processor: %s keeps its any-resolution tiling", type(current).__name__)
        return processor  # LLaVA-NeXT / OneVision: tiles cover the whole image, nothing to pad or crop
    if bool(getattr(current, "do_pad", False)) == (mode == "pad"):
        return processor
    if mode == "crop":
        current.do_pad = False
    else:
        settings = current.to_dict()
        kwargs = {key: settings[key] for key in _CARRIED if settings.get(key) is not None}
        kwargs.setdefault("do_center_crop", False)  # e.g. SigLIP's processor resizes to a square and never crops
        processor.image_processor = LlavaImageProcessorPil(**kwargs, do_pad=True)
    log.debug("image processor: %s, image_aspect_ratio=%s", type(processor.image_processor).__name__, mode)
    return processor


def image_aspect_ratio(processor: ProcessorMixin) -> ImageAspectRatio:
    """`"pad"` when `processor` pads images to a square, else `"crop"`."""
    return "pad" if getattr(processor.image_processor, "do_pad", False) else "crop"
