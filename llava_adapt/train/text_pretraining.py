"""Next-token training of a LLaVA model's language model alone, on plain text: how the built-in tiny model gets a
language model that knows the words of a run before stage 1, as LLaVA's Vicuna does before LLaVA aligns images to
it. The vision tower and the projector are left untouched; the run's images are never seen.

A plain PyTorch loop rather than a `Trainer`: a few hundred steps of a sub-million-parameter model on short lines,
where the loop is shorter than the trainer's configuration and runs in seconds on a CPU.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase


def pretrain_language_model(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    steps: int,
    learning_rate: float = 3.0e-3,
    seed: int = 0,
    batch_size: int = 32,
    max_length: int = 64,
) -> list[float]:
    """Train `model`'s language model and LM head on `texts` with the next-token loss (AdamW, constant rate).

    Args:
        model (`PreTrainedModel`): a LLaVA model (`LlavaForConditionalGeneration` or LLaVA-NeXT); trained in place.
        tokenizer (`PreTrainedTokenizerBase`): its tokenizer; each text is wrapped in BOS and EOS.
        texts (`Sequence[str]`): the lines to train on (sampled with replacement across steps).
        steps (`int`): optimisation steps.
        learning_rate (`float`, defaults to `3e-3`): AdamW's rate.
        seed (`int`, defaults to `0`): seed of the batch sampling.
        batch_size (`int`, defaults to `32`): texts per step.
        max_length (`int`, defaults to `64`): tokens kept per text.

    Returns:
        The loss of every step.
    """
    if not texts:
        raise ValueError("text pretraining needs at least one text")
    parameters = [*model.get_decoder().parameters(), *model.lm_head.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=0.0)
    rng = random.Random(seed)
    # tokenized once, cut and padded here: asking the tokenizer to truncate or pad would switch its backend's
    # truncation on for good (a later image prompt would lose image tokens), and it is saved with the model
    encoded = tokenizer(
        [f"{tokenizer.bos_token}{text}{tokenizer.eos_token}" for text in texts], add_special_tokens=False
    )
    rows = [torch.tensor(ids[:max_length]) for ids in encoded["input_ids"]]
    losses = []
    model.train()
    for _ in range(steps):
        batch = [rows[rng.randrange(len(rows))] for _ in range(batch_size)]
        input_ids = torch.nn.utils.rnn.pad_sequence(batch, batch_first=True, padding_value=tokenizer.pad_token_id)
        attention_mask = torch.nn.utils.rnn.pad_sequence(
            [torch.ones_like(row) for row in batch], batch_first=True, padding_value=0
        )
        labels = input_ids.masked_fill(attention_mask == 0, -100)
        # no pixel_values: the model runs its language model and LM head only, and shifts the labels itself
        loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    model.eval()
    return losses
