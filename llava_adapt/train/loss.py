"""The loss with the LM head applied only at the positions that carry loss.

TRL's `SFTTrainer` computes the loss through a fused, chunked LM head. Where Triton runs (CUDA, XPU) it projects
only the positions whose next-token label is kept; elsewhere (CPU, MPS) it projects every position, to keep tile
shapes fixed for compilers. In a LLaVA batch most positions carry no loss (the image tokens, the prompt, the
padding), so off Triton the LM head does several times the work it needs: with a 32K vocabulary it is the largest
matrix product of a small language model. `labelled_loss` asks the model for the logits of the kept positions only
(transformers' `logits_to_keep` with a boolean mask) and takes the same loss: the negative log-likelihood summed over
the same tokens, divided by `num_items_in_batch` (or their count), as TRL's does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import is_triton_available

from llava_adapt.train.examples import IGNORE_INDEX


def fused_head_skips_unlabelled(device: torch.device) -> bool:
    """Whether TRL's fused LM head already projects only the labelled positions on `device` (Triton on CUDA/XPU)."""
    return device.type in ("cuda", "xpu") and is_triton_available()


@dataclass
class LabelledLoss:
    """The loss of one batch and what TRL logs beside it.

    Args:
        loss (`torch.Tensor`): the loss to back-propagate.
        tokens (`torch.Tensor`): how many labels carry loss.
        entropy (`torch.Tensor`): the summed entropy of the predicted distributions at those positions.
        correct (`torch.Tensor`): how many of those labels are the most likely token.
    """

    loss: torch.Tensor
    tokens: torch.Tensor
    entropy: torch.Tensor
    correct: torch.Tensor


def labelled_loss(
    model: nn.Module, inputs: dict[str, torch.Tensor], num_items_in_batch: torch.Tensor | int | None = None
) -> LabelledLoss:
    """Run `model` on `inputs` with the LM head only where the next token carries loss; return the loss.

    Args:
        model (`nn.Module`): the (possibly PEFT-, DDP- or FSDP-wrapped) model; its forward takes `logits_to_keep`.
        inputs (`dict[str, torch.Tensor]`): the batch, with `labels` (`-100` where no loss is taken).
        num_items_in_batch (`torch.Tensor | int`, *optional*): what the summed loss is divided by (the labelled
            tokens of the whole accumulated batch, as the trainer counts them); `None` = this batch's count.
    """
    labels = inputs["labels"]
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != IGNORE_INDEX
    targets = labels[:, 1:][keep[:, :-1]]
    model_inputs = {name: value for name, value in inputs.items() if name != "labels"}
    logits = model(**model_inputs, use_cache=False, logits_to_keep=keep).logits.float()
    divisor = targets.numel() if num_items_in_batch is None else num_items_in_batch
    loss = F.cross_entropy(logits, targets, reduction="sum") / torch.as_tensor(divisor, device=logits.device).clamp(
        min=1
    )
    with torch.no_grad():
        log_probs = logits.log_softmax(-1)
        entropy = -(log_probs.exp() * log_probs).sum()
        correct = (logits.argmax(-1) == targets).sum()
    return LabelledLoss(loss, torch.tensor(targets.numel(), device=logits.device), entropy, correct)
