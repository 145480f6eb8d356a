"""Batching tokenized samples: right padding (or one padding-free row), the attention mask, and the images decoded
(or their cached vision features read) on the fly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image
from transformers import ProcessorMixin

from llava_adapt.train.examples import IGNORE_INDEX
from llava_adapt.train.features import FeatureCache


@dataclass
class LlavaCollator:
    """Collate rows of a tokenized dataset (`input_ids`, `labels`, `image_path`) into a model batch.

    Args:
        processor (`ProcessorMixin`): the model's processor; its image processor turns images into `pixel_values`
            and its tokenizer gives the pad id.
        pad_to_multiple_of (`int`, *optional*): round the padded length up to a multiple of this (tensor cores).
        features (`FeatureCache`, *optional*): read each image's cached vision features (by content) instead of
            decoding it; they go into `pixel_values` for `cached_vision_tower`.
        padding_free (`bool`, defaults to `False`): concatenate the rows into one row without padding, with
            `position_ids` restarting at each sample and no attention mask (FlashAttention keeps the samples
            apart); each sample's first label is ignored so that no loss crosses a boundary.
    """

    processor: ProcessorMixin
    pad_to_multiple_of: int | None = None
    features: FeatureCache | None = None
    padding_free: bool = False

    def _text(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if self.padding_free:
            labels = [[IGNORE_INDEX, *row["labels"][1:]] for row in rows]
            return {
                "input_ids": torch.tensor([[t for row in rows for t in row["input_ids"]]], dtype=torch.long),
                "labels": torch.tensor([[t for row in labels for t in row]], dtype=torch.long),
                "position_ids": torch.cat([torch.arange(len(row["input_ids"])) for row in rows]).unsqueeze(0),
            }
        longest = max(len(r["input_ids"]) for r in rows)
        if self.pad_to_multiple_of:
            longest = -(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of
        pad_id = self.processor.tokenizer.pad_token_id
        input_ids = torch.full((len(rows), longest), pad_id, dtype=torch.long)
        labels = torch.full((len(rows), longest), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), longest), dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row["input_ids"])
            input_ids[i, :n] = torch.as_tensor(row["input_ids"])
            labels[i, :n] = torch.as_tensor(row["labels"])
            attention_mask[i, :n] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = self._text(rows)
        paths = [row["image_path"] for row in rows if row["image_path"]]
        if paths and self.features is not None:
            batch["pixel_values"] = torch.stack([self.features.load(path) for path in paths])
        elif paths:
            images = []
            for path in paths:
                with Image.open(path) as image:
                    images.append(image.convert("RGB"))
            # pixel_values, and for LLaVA-NeXT / OneVision the image_sizes their any-resolution tiling needs
            batch.update(self.processor.image_processor(images, return_tensors="pt"))
        return batch
