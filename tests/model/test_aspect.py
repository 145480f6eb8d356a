"""`model.image_aspect_ratio`: LLaVA-1.5's pad-to-square against llava-hf's centre crop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoProcessor

from llava_adapt.model.aspect import image_aspect_ratio, set_image_aspect_ratio
from llava_adapt.model.config import ModelConfig, TinyModelConfig
from llava_adapt.model.load import load_model
from llava_adapt.model.tiny import build_tiny_model
from llava_adapt.recipe.loader import RecipeError, load_recipe

from .helpers import save_language_model, save_vision_tower


def _wide_image_with_a_mark_at_the_left_edge() -> Image.Image:
    """A 256×128 grey image with a white square in its left eighth (outside any centre crop)."""
    pixels = np.full((128, 256, 3), 90, dtype=np.uint8)
    pixels[48:80, 4:28] = 255
    return Image.fromarray(pixels)


def _pixels(processor, image: Image.Image) -> torch.Tensor:
    return processor.image_processor(image, return_tensors="pt")["pixel_values"][0]


def _unnormalise(processor, pixels: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(processor.image_processor.image_mean).view(3, 1, 1)
    std = torch.tensor(processor.image_processor.image_std).view(3, 1, 1)
    return (pixels * std + mean) * 255


def test_pad_keeps_the_borders_that_a_centre_crop_drops() -> None:
    _, processor = build_tiny_model(TinyModelConfig(), seed=0)
    image = _wide_image_with_a_mark_at_the_left_edge()
    cropped = _unnormalise(processor, _pixels(processor, image))
    assert image_aspect_ratio(processor) == "crop"
    assert cropped.max() < 120  # the white mark was cut off

    set_image_aspect_ratio(processor, "pad")
    assert image_aspect_ratio(processor) == "pad"
    padded = _unnormalise(processor, _pixels(processor, image))
    assert padded.shape == cropped.shape == (3, 64, 64)
    assert padded.max() > 200  # the mark is still there
    # A 2:1 image fills the middle half; the top and bottom quarters are LLaVA's mean colour (expand2square).
    mean_colour = torch.tensor([int(x * 255) for x in processor.image_processor.image_mean], dtype=torch.float32)
    top_row = padded[:, 2, :].mean(dim=1)
    assert torch.allclose(top_row, mean_colour, atol=1.5)
    assert abs(padded[:, 32, 40].mean().item() - 90) < 3  # the image itself, unchanged


def test_pad_then_crop_switches_back() -> None:
    _, processor = build_tiny_model(TinyModelConfig(), seed=0)
    image = _wide_image_with_a_mark_at_the_left_edge()
    before = _pixels(processor, image)
    set_image_aspect_ratio(processor, "pad")
    set_image_aspect_ratio(processor, "crop")
    assert image_aspect_ratio(processor) == "crop"
    assert torch.allclose(_pixels(processor, image), before, atol=1e-5)
    with pytest.raises(ValueError, match="'pad' or 'crop'"):
        set_image_aspect_ratio(processor, "square")


def test_a_padding_processor_reloads_with_stock_auto_processor(tmp_path: Path) -> None:
    _, processor = build_tiny_model(TinyModelConfig(), seed=0)
    set_image_aspect_ratio(processor, "pad")
    processor.save_pretrained(tmp_path)
    reloaded = AutoProcessor.from_pretrained(tmp_path)
    assert reloaded.image_processor.do_pad is True
    image = _wide_image_with_a_mark_at_the_left_edge()
    assert torch.equal(_pixels(reloaded, image), _pixels(processor, image))
    # The text side is untouched: one <image> still expands to the same number of tokens.
    encoded = reloaded(text=reloaded.image_token, images=[image])
    image_id = reloaded.tokenizer.convert_tokens_to_ids(reloaded.image_token)
    assert list(encoded["input_ids"][0]).count(image_id) == (64 // 16) ** 2


def test_siglip_components_pad_and_resize_without_a_crop(tmp_path: Path) -> None:
    config = ModelConfig(
        source="components",
        vision_tower=str(save_vision_tower(tmp_path / "siglip", "siglip")),
        language_model=str(save_language_model(tmp_path / "lm")),
        dtype="float32",
    )
    _, processor = load_model(config)
    assert image_aspect_ratio(processor) == "pad"
    padded = _unnormalise(processor, _pixels(processor, _wide_image_with_a_mark_at_the_left_edge()))
    assert padded.shape == (3, 32, 32)  # SigLIP's square size, no 224 crop slipped in
    assert padded.max() > 200


def test_recipe_default_is_pad_and_a_wrong_value_is_named(tmp_path: Path) -> None:
    assert ModelConfig().image_aspect_ratio == "pad"
    _, processor = load_model(ModelConfig(source="tiny", image_aspect_ratio="crop"))
    assert image_aspect_ratio(processor) == "crop"
    with pytest.raises(RecipeError, match="image_aspect_ratio"):
        load_recipe("biomed", preset="tiny", overrides=["model.image_aspect_ratio=square"])
