"""The `align:` (stage 1), `instruct:` (stage 2) and `finetune:` (downstream) sections of a recipe. Imports only
pydantic.

Defaults are LLaVA-1.5's published settings (scripts/v1_5/pretrain.sh, finetune_lora.sh, finetune_task_lora.sh) and,
for `finetune`, LLaVA-Med's downstream fine-tune on a VQA benchmark's train split.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class TrainerSettings(BaseModel):
    """Knobs both stages share; they map onto TRL's `SFTConfig` fields of the same name."""

    model_config = ConfigDict(extra="forbid")

    learning_rate: float = Field(1e-3, gt=0)
    num_train_epochs: float = Field(1.0, gt=0)
    max_steps: int = -1  # > 0 overrides num_train_epochs
    per_device_train_batch_size: int = Field(32, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    lr_scheduler_type: str = "cosine"
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    max_length: int | None = Field(2048, ge=1)  # tokens, image tokens included; None = no limit
    max_dropped_fraction: float = Field(0.05, ge=0, le=1)  # stop if more samples than this would be truncated
    logging_steps: int = Field(10, ge=1)
    save_steps: int = Field(500, ge=1)
    save_total_limit: int | None = 2
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto = bf16 on a GPU that has it, else fp32
    activation_checkpointing: bool = False
    group_by_length: bool = True  # batch samples of similar token length together (less padding)
    dataloader_num_workers: int = Field(0, ge=0)  # processes decoding images; 0 = in the training process
    # Speed-ups. Each leaves the result the same (loss within float noise) and can be turned off here.
    # The frozen vision tower's features are computed once per image, stored under RUN_DIR/cache/vision_features
    # (llava_adapt/train/features.py; LLaVA-1.5 architecture, tower frozen); later epochs and stages read them.
    cache_vision_features: bool = True
    # Where TRL's fused LM head projects every position (off CUDA/XPU), project only those that carry loss.
    labelled_logits_only: bool = True
    pad_to_multiple_of: int | None = Field(8, ge=1)  # on a GPU: padded length rounded up (tensor cores); None = off
    padding_free: bool = True  # with flash_attention_2/3: each batch one row without padding; other attention: off
    liger_kernel: bool = True  # on a CUDA GPU with liger-kernel installed: its RMSNorm / SwiGLU / RoPE kernels
    dataset_num_proc: int | None = Field(None, ge=1)  # tokenizing processes; None = 1 per 5,000 samples, <= cores, 16


class AlignConfig(TrainerSettings):
    """Stage 1: only the projector trains, loss only on the caption.

    `projector_init` takes a released stage-1 projector instead (LLaVA's `mm_projector.bin`, a file, a folder or a
    Hub repo holding it, e.g. `liuhaotian/llava-v1.5-mlp2x-336px-pretrain-vicuna-7b-v1.5`): `align` then loads it
    into the model and saves the result without training, as LLaVA's "use the released projector" path.
    """

    projector_init: str | None = None


class LoraSettings(BaseModel):
    """LoRA adapter shape (LLaVA-1.5: r=128, alpha=256)."""

    model_config = ConfigDict(extra="forbid")

    r: int = Field(128, ge=1)
    alpha: int = Field(256, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    train_lm_head: bool = False  # also train lm_head in full (saved in the adapter); helps randomly initialised LMs


class InstructConfig(TrainerSettings):
    """Stage 2: projector + language model train, loss only on assistant turns."""

    mode: Literal["lora", "qlora", "full"] = "lora"
    learning_rate: float = Field(2e-4, gt=0)  # LLaVA-1.5 LoRA; use 2e-5 with mode: full
    projector_lr: float | None = Field(2e-5, gt=0)  # the projector's own learning rate; None = learning_rate
    per_device_train_batch_size: int = Field(16, ge=1)
    lora: LoraSettings = LoraSettings()
    train_vision_tower: bool = False
    # LLaVA's "no stage 1" ablation, measured: when the recipe runs `align`, also train this same stage 2 (same data,
    # settings and seed) from the model as it was before `align` into `instruct/without_align/`; `evaluate` then
    # scores it next to the trained and the untrained model. Costs a second stage-2 training and evaluation.
    compare_without_align: bool = False


TrainingMode = Literal["lora", "qlora", "full"]
# LLaVA-Med's downstream fine-tune (full, 3 epochs, lr 2e-5) and LLaVA's finetune_task_lora.sh (LoRA, lr 2e-4).
FINETUNE_LEARNING_RATES: dict[str, float] = {"full": 2e-5, "lora": 2e-4, "qlora": 2e-4}


class FinetuneConfig(TrainerSettings):
    """Downstream fine-tune: train on a domain benchmark's train split, each question a one-turn conversation whose
    user turn is the question as `evaluate` asks it and whose assistant turn (the only one with loss) is the answer.

    After `instruct` it keeps training what `instruct` produced (the same adapter over the same base, or the full
    model); without `instruct` it starts from `align/` or the untrained model with a new LoRA or full training.
    """

    benchmark: str | None = None  # the domain benchmark whose train split is trained on (e.g. vqa_rad)
    args: dict[str, Any] = Field(default_factory=dict)  # its loader arguments; `split` defaults to "train"
    mode: TrainingMode | None = None  # None = what instruct trained (adapter or full), or lora without instruct
    learning_rate: float | None = Field(None, gt=0)  # None = by mode: FINETUNE_LEARNING_RATES
    projector_lr: float | None = Field(2e-5, gt=0)  # finetune_task_lora.sh's mm_projector_lr; None = learning_rate
    num_train_epochs: float = Field(3.0, gt=0)  # LLaVA-Med's downstream command (its released deltas: 9 epochs)
    per_device_train_batch_size: int = Field(16, ge=1)
    # The shape of a new adapter (no `instruct` in the recipe); after instruct its adapter keeps instruct.lora's.
    lora: LoraSettings | None = None
    train_vision_tower: bool | None = None  # None = as instruct (when continuing it), else frozen

    def loader_args(self, args_model: type[BaseModel]) -> dict[str, Any]:
        """The benchmark's loader arguments: `args`, with `split: train` when the loader has a `split` argument
        that `args` does not set.

        Args:
            args_model (`type[BaseModel]`): the benchmark's arguments model (`Benchmark.args`).
        """
        args = dict(self.args)
        if "split" in args_model.model_fields and "split" not in args:
            args["split"] = "train"
        return args

    def resolved_learning_rate(self, mode: str) -> float:
        """`learning_rate`, or the default of `mode` (`FINETUNE_LEARNING_RATES`) when it is unset."""
        return self.learning_rate if self.learning_rate is not None else FINETUNE_LEARNING_RATES[mode]
