"""TRL's `SFTTrainer` with what LLaVA training adds: a projector learning rate, the LM head only where the loss is
taken (`llava_adapt.train.loss`), and the stage's `SFTConfig`.

Everything else (the loss on `labels`, PEFT wrapping, checkpoints with optimizer/scheduler/RNG state, resuming,
`accelerate launch` for DDP / DeepSpeed / FSDP) is TRL's and transformers' own.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch
from accelerate.utils import is_peft_model
from torch import nn
from transformers.trainer import TRAINING_ARGS_NAME
from trl import SFTConfig, SFTTrainer

from llava_adapt.model.modules import part_of
from llava_adapt.train.config import TrainerSettings
from llava_adapt.train.loss import fused_head_skips_unlabelled, labelled_loss
from llava_adapt.train.tracking import Tracker


class LlavaSFTTrainer(SFTTrainer):
    """`SFTTrainer` whose optimizer gives the projector its own learning rate (LLaVA's `mm_projector_lr`).

    Args:
        *args: passed to `SFTTrainer`.
        projector_lr (`float`, *optional*): learning rate of the projector's parameters; `None` = the same as the
            rest. Takes effect through optimizer parameter groups, so the scheduler scales it like the others.
        labelled_logits_only (`bool`, defaults to `False`): where TRL's fused LM head projects every position
            (off CUDA/XPU), project only those that carry loss (`llava_adapt.train.loss.labelled_loss`); the loss
            and the logged metrics are the same.
        **kwargs: passed to `SFTTrainer`.
    """

    def __init__(self, *args, projector_lr: float | None = None, labelled_logits_only: bool = False, **kwargs) -> None:
        self.projector_lr = projector_lr
        self.labelled_logits_only = labelled_logits_only
        super().__init__(*args, **kwargs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        device = inputs["input_ids"].device
        if (
            not self.labelled_logits_only
            or return_outputs
            or self.aux_loss_enabled
            or fused_head_skips_unlabelled(device)
        ):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        result = labelled_loss(model, inputs, num_items_in_batch)
        loss = result.loss
        # As TRL's: `num_items_in_batch` counts every rank's tokens, and DDP averages the gradients across ranks
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * (self.accelerator.num_processes // self._tp_size)
        mode = "train" if self.model.training else "eval"
        gather = self.accelerator.gather_for_metrics
        tokens = gather(result.tokens).sum()
        if tokens > 0:
            self._metrics[mode]["entropy"].append((gather(result.entropy).sum() / tokens).item())
            self._metrics[mode]["mean_token_accuracy"].append((gather(result.correct).sum() / tokens).item())
        if mode == "train":
            seen = inputs["attention_mask"].sum() if "attention_mask" in inputs else inputs["position_ids"].size(1)
            self._total_train_tokens += gather(torch.as_tensor(seen, device=device)).sum().item() // self._tp_size
        self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
        return loss

    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        if self.projector_lr is None or self.optimizer is not None:
            return super().create_optimizer(model)
        opt_model = self.model if model is None else model
        decay = set(self.get_decay_parameter_names(opt_model))
        groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
        for name, param in opt_model.named_parameters():
            if param.requires_grad:
                key = (part_of(opt_model, name) == "projector", name in decay)
                groups.setdefault(key, []).append(param)
        param_groups = []
        for (is_projector, has_decay), params in sorted(groups.items()):
            group = {"params": params, "weight_decay": self.args.weight_decay if has_decay else 0.0}
            if is_projector:
                group["lr"] = self.projector_lr
            param_groups.append(group)
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
        self.optimizer = optimizer_cls(param_groups, **optimizer_kwargs)
        return self.optimizer

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        # An adapter never carries the embeddings (LoRA targets only the LM's linear layers, and a resized
        # vocabulary lives in the base model): say so, rather than let PEFT's "auto" look the base up on the Hub.
        if not is_peft_model(self.model):
            return super()._save(output_dir, state_dict)
        output_dir = output_dir or self.args.output_dir
        if self.args.should_save:
            os.makedirs(output_dir, exist_ok=True)
            self.model.save_pretrained(output_dir, state_dict=state_dict, save_embedding_layers=False)
            self.processing_class.save_pretrained(output_dir)
            torch.save(self.args, os.path.join(output_dir, TRAINING_ARGS_NAME))


def use_bf16(precision: str) -> bool:
    """Whether a stage trains in bf16: `bf16`, or `auto` on a CUDA GPU that supports it."""
    if precision == "auto":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return precision == "bf16"


def use_liger(settings: TrainerSettings) -> bool:
    """Whether Liger's kernels (RMSNorm, SwiGLU, RoPE) are applied: `liger_kernel` on, a CUDA GPU, liger-kernel
    installed. TRL keeps its own fused LM head (the fused linear cross-entropy) either way."""
    return settings.liger_kernel and torch.cuda.is_available() and importlib.util.find_spec("liger_kernel") is not None


def sft_config(settings: TrainerSettings, output_dir: Path, seed: int, tracker: Tracker | None = None) -> SFTConfig:
    """The `SFTConfig` of a stage, from its recipe section.

    Data preparation is ours (tokenized, length-checked rows; see `llava_adapt.train.dataset`), so TRL's is skipped
    and its `max_length` is off; unused columns are kept for the collator.

    Args:
        settings (`TrainerSettings`): the stage's recipe section (`align:` or `instruct:`).
        output_dir (`Path`): where checkpoints go (`<stage folder>/checkpoints`).
        seed (`int`): the recipe's seed (model init, data order, dropout).
        tracker (`Tracker`, *optional*): where to report the training metrics (`report_to`, `run_name`, `project`);
            `None` = nowhere.
    """
    tracking = tracker.training_arguments() if tracker is not None else {"report_to": "none"}
    return SFTConfig(
        output_dir=str(output_dir),
        learning_rate=settings.learning_rate,
        num_train_epochs=settings.num_train_epochs,
        max_steps=settings.max_steps,
        per_device_train_batch_size=settings.per_device_train_batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        warmup_steps=settings.warmup_ratio,
        lr_scheduler_type=settings.lr_scheduler_type,
        weight_decay=settings.weight_decay,
        max_grad_norm=settings.max_grad_norm,
        logging_steps=settings.logging_steps,
        save_strategy="steps",
        save_steps=settings.save_steps,
        save_total_limit=settings.save_total_limit,
        bf16=use_bf16(settings.precision),
        use_liger_kernel=use_liger(settings),
        fp16=settings.precision == "fp16",
        activation_checkpointing=settings.activation_checkpointing,
        train_sampling_strategy="group_by_length" if settings.group_by_length else "random",
        length_column_name="length",
        dataloader_num_workers=settings.dataloader_num_workers,
        max_length=None,
        dataset_kwargs={"skip_prepare_dataset": True},
        remove_unused_columns=False,
        use_cpu=not torch.cuda.is_available(),
        seed=seed,
        data_seed=seed,
        disable_tqdm=os.environ.get("LLAVA_ADAPT_PROGRESS", "1") == "0",
        **tracking,
    )
