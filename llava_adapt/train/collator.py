"""Batching tokenized samples: right padding, the attention mask, and the images decoded on the fly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image
from transformers import ProcessorMixin

from llava_adapt.train.examples import IGNORE_INDEX


@dataclass
class LlavaCollator:
    """Collate rows of a tokenized dataset (`input_ids`, `labels`, `image_path`) into a model batch.

    Args:
        processor (`ProcessorMixin`): the model's processor; its image processor turns images into `pixel_values`
            and its tokenizer gives the pad id.
        pad_to_multiple_of (`int`, *optional*): round the padded length up to a multiple of this (tensor cores).
    """

    processor: ProcessorMixin
    pad_to_multiple_of: int | None = None

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
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
        batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
        images = []
        for row in rows:
            if row["image_path"]:
                with Image.open(row["image_path"]) as image:
                    images.append(image.convert("RGB"))
        if images:
            # pixel_values, and for LLaVA-NeXT / OneVision the image_sizes their any-resolution tiling needs
            batch.update(self.processor.image_processor(images, return_tensors="pt"))
        return batch
