"""Cached vision features: a frozen vision tower runs once per image, not once per image in every epoch and stage.

LLaVA (and TRL's stock path) run the vision tower on every image of every batch, although in `align` and in a
stage 2 that keeps the tower frozen its output never changes. Here the hidden states the projector reads (the
tower's `vision_feature_layer`, before the feature-select strategy drops CLIP's CLS token) are computed once per
image, in evaluation mode, and stored on disk; training then feeds them to the model in place of `pixel_values`.

- **Where**: `RUN_DIR/cache/vision_features/<settings key>/<ab>/<image sha256>.safetensors`, one file per image
  content (the same picture under two paths is stored once), a tensor `features` of shape
  `(n_layers, tokens, hidden)` in the tower's dtype. The settings key hashes the tower's weights, the feature
  layer(s), the image processor's settings (size, crop, padding to a square, normalisation) and the dtype, so another
  tower, layer or preprocessing never reads stale features; `settings.json` beside the files says what they are.
  `align` fills it, and `instruct` / `finetune` on the same images with the same frozen tower only read it.
- **How the model gets them**: the vision tower's `forward` is replaced, for the duration of training only, by one
  that returns the cached hidden states it is handed as `pixel_values` (`cached_vision_tower`). The model's own
  code still selects the layer, applies the strategy and runs the projector, so gradients, DDP and FSDP see the
  stock forward, and the saved model is a stock llava-hf folder.
- **When**: LLaVA-1.5's architecture (`model_type` `llava`) with a frozen tower that has no dropout and no image
  augmentation (none is applied in this project). LLaVA-NeXT / OneVision tile each image by its size and are left
  to compute features every step (`unsupported_reason`).

Cost on disk: `tokens x hidden x bytes` per image and layer, e.g. 577 x 1024 x 2 B = 1.2 MB for CLIP ViT-L/14-336
in bf16 (about 0.7 TB for LLaVA's 558K pretraining images); `build_feature_cache` skips the cache with a warning when
the disk lacks the room.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import PartialState
from accelerate.utils import broadcast_object_list, gather_object
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import PreTrainedModel, ProcessorMixin
from transformers.modeling_outputs import BaseModelOutputWithPooling

from llava_adapt.model.modules import get_part
from llava_adapt.run.atomic import atomic_path, write_json

log = logging.getLogger("llava_adapt")

CACHE_FORMAT = 1  # bump when the stored tensors change meaning
SUPPORTED_MODEL_TYPES = ("llava",)
BATCH_SIZE = 32  # images per vision-tower forward while filling the cache


def image_digest(path: str | Path) -> str:
    """The SHA-256 of an image file's bytes: the cache key of its features."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def feature_layers(model: PreTrainedModel) -> tuple[int, ...]:
    """The vision layer(s) the projector reads (`config.vision_feature_layer`, an index or a list of them)."""
    layer = model.config.vision_feature_layer  # a PEFT model reads its base model's config
    return (layer,) if isinstance(layer, int) else tuple(layer)


def unsupported_reason(model: PreTrainedModel) -> str | None:
    """Why the features of `model`'s vision tower cannot be cached, or `None` when they can.

    Args:
        model (`PreTrainedModel`): the model with the stage's parameters already trainable (PEFT-wrapped or not).
    """
    config = model.config
    if config.model_type not in SUPPORTED_MODEL_TYPES:
        return f"{config.model_type} computes features per image tile (only {'/'.join(SUPPORTED_MODEL_TYPES)} cached)"
    tower = get_part(model, "vision_tower")
    if any(p.requires_grad for p in tower.parameters()):
        return "the vision tower trains"
    vision = config.vision_config
    if getattr(vision, "dropout", 0.0) or getattr(vision, "attention_dropout", 0.0):
        return "the vision tower has dropout"
    return None


def _settings(model: PreTrainedModel, processor: ProcessorMixin) -> dict:
    """What decides the features: the tower's weights (hashed), the layers, the image processor and the dtype."""
    tower = get_part(model, "vision_tower")
    weights = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(tower.state_dict().items()):
        weights.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        weights.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    image_processor = processor.image_processor.to_dict()
    image_processor.pop("processor_class", None)
    return {
        "format": CACHE_FORMAT,
        "tower_class": type(tower).__name__,
        "tower_weights": weights.hexdigest(),
        "layers": list(feature_layers(model)),
        "image_processor": image_processor,
        "dtype": str(tower.dtype),
    }


@dataclass(frozen=True)
class FeatureCache:
    """A folder of cached features for one tower, layer set and image processor.

    Args:
        folder (`Path`): `<cache root>/<settings key>`.
        layers (`tuple[int, ...]`): the vision layers stored, in the order of the tensors' first dimension.
    """

    folder: Path
    layers: tuple[int, ...]

    def path(self, digest: str) -> Path:
        """The file of the image whose content hash is `digest`."""
        return self.folder / digest[:2] / f"{digest}.safetensors"

    def load(self, image: str | Path) -> torch.Tensor:
        """The features of the image at `image`, `(n_layers, tokens, hidden)`.

        Raises:
            FileNotFoundError: the image changed (or was added) since the cache was filled.
        """
        path = self.path(image_digest(image))
        if not path.is_file():
            raise FileNotFoundError(
                f"no cached vision features for {image} (its content changed after the cache was filled?); "
                "run the stage again to fill the cache"
            )
        return load_file(str(path))["features"]


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _bytes_per_image(tower: nn.Module, layers: int) -> int:
    config = tower.config
    tokens = (config.image_size // config.patch_size) ** 2 + 1
    return layers * tokens * config.hidden_size * torch.finfo(tower.dtype).bits // 8


@torch.no_grad()
def _compute(tower: nn.Module, processor: ProcessorMixin, cache: FeatureCache, images: list[str], device) -> None:
    """Run the tower on `images` (paths whose features are missing) and store one file per image content."""
    was_training, was_on = tower.training, next(tower.parameters()).device
    tower.eval().to(device)
    try:
        for batch in _batches(images, BATCH_SIZE):
            decoded = []
            for path in batch:
                with Image.open(path) as image:
                    decoded.append(image.convert("RGB"))
            pixels = processor.image_processor(decoded, return_tensors="pt")["pixel_values"]
            hidden = tower(pixels.to(device, tower.dtype), output_hidden_states=True).hidden_states
            stacked = torch.stack([hidden[layer] for layer in cache.layers], dim=1).cpu()
            for path, features in zip(batch, stacked, strict=True):
                out = cache.path(image_digest(path))
                out.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(out) as tmp:
                    save_file({"features": features.contiguous()}, str(tmp))
    finally:
        tower.train(was_training).to(was_on)


def build_feature_cache(
    model: PreTrainedModel, processor: ProcessorMixin, images: Iterable[str], root: Path
) -> FeatureCache | None:
    """Fill the feature cache for `images` (paths) and return it; `None` when the disk lacks the room.

    With several processes the images are shared out among those whose tower holds real weights (not on the meta
    device, as FSDP's memory-efficient loading leaves all but the first); the others wait.

    Args:
        model (`PreTrainedModel`): the model (`unsupported_reason(model)` must be `None`).
        processor (`ProcessorMixin`): its processor (the image processor turns images into pixels).
        images (`Iterable[str]`): image paths; repeats and images already cached cost only a hash.
        root (`Path`): the cache root (`RUN_DIR/cache/vision_features`).
    """
    state = PartialState()
    tower = get_part(model, "vision_tower")
    real = not any(p.is_meta for p in tower.parameters())
    settings = _settings(model, processor) if state.is_main_process else None
    ready = [real]
    if state.num_processes > 1:
        settings = broadcast_object_list([settings])[0]
        ready = gather_object([real])
    key = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
    cache = FeatureCache(root / key, tuple(settings["layers"]))
    unique = sorted(set(images) - {""})
    workers = [rank for rank, ok in enumerate(ready) if ok]
    if state.is_main_process:
        cache.folder.mkdir(parents=True, exist_ok=True)
        if not (cache.folder / "settings.json").is_file():
            write_json(cache.folder / "settings.json", settings)
    mine = unique[workers.index(state.process_index) :: len(workers)] if state.process_index in workers else []
    seen: set[str] = set()
    missing = []
    for path in mine:
        digest = image_digest(path)
        if digest not in seen and not cache.path(digest).is_file():
            missing.append(path)
        seen.add(digest)
    need = len(missing) * _bytes_per_image(tower, len(cache.layers))
    room = shutil.disk_usage(root if root.exists() else root.parent).free
    enough = need * 1.1 < room
    if state.num_processes > 1:
        enough = all(gather_object([enough]))
    if not enough:
        log.warning(
            "vision feature cache: %d new images need about %.1f GB, %s has %.1f GB free; computing features every "
            "step instead (set cache_vision_features: false to silence this)", len(missing), need / 1e9, root,
            room / 1e9,
        )  # fmt: skip
        return None
    if missing:
        log.info("vision feature cache: computing %d of %d images into %s", len(missing), len(unique), cache.folder)
        _compute(tower, processor, cache, missing, state.device)
    state.wait_for_everyone()
    return cache


@contextlib.contextmanager
def cached_vision_tower(model: PreTrainedModel, cache: FeatureCache) -> Iterator[None]:
    """Within the block, `model`'s vision tower takes cached features as its `pixel_values`: a tensor
    `(images, n_layers, tokens, hidden)` as `LlavaCollator` builds it from `cache`, returned as the hidden states of
    the cached layers. The tower's parameters, state dict and saved files are untouched.

    Args:
        model (`PreTrainedModel`): the model (PEFT-wrapped or not).
        cache (`FeatureCache`): the cache the collator reads.
    """
    tower = get_part(model, "vision_tower")
    slots = tower.config.num_hidden_layers + 1  # the embeddings' output, then one per layer

    def forward(pixel_values: torch.Tensor, *args, **kwargs) -> BaseModelOutputWithPooling:
        hidden: list[torch.Tensor | None] = [None] * slots
        for i, layer in enumerate(cache.layers):
            hidden[layer] = pixel_values[:, i]
        return BaseModelOutputWithPooling(hidden_states=tuple(hidden))

    tower.forward = forward
    try:
        yield
    finally:
        del tower.forward
