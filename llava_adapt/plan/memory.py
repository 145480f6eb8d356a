"""An estimate of the peak GPU memory per device of one training stage: an estimate, with its terms shown.

peak = weights + gradients + optimizer states + gathered layers + activations (a worst case: it adds every term,
though gradients grow while activations are freed; the CUDA context and allocator fragmentation, typically 1-3 GB,
come on top). Bytes per value:

- **weights** in the load dtype `w` (`model.dtype`; `auto` = bf16, the plan assumes a GPU that has it: 2 bytes;
  float32: 4). `qlora` stores the language model's `nn.Linear` weights in 4-bit NF4 with double quantisation
  (4.127 bits a weight: 4 + 8/64 + 32/(64 x 256)) and the rest in bf16. With LoRA, PEFT's `modules_to_save` keeps a
  trainable copy of each fully trained part next to its frozen original, and adds the adapter (rank r on each of the
  language model's linear layers: r x (in + out)).
- **trainable values** (gradients and AdamW's two moments) in the dtype of the trainable parameter: transformers'
  Trainer with a bf16-loaded model keeps params, grads and AdamW states in bf16; PEFT upcasts LoRA adapters to fp32
  (TRL keeps them in the base dtype under ZeRO-3); TRL casts every trainable parameter to bf16 for QLoRA; accelerate
  upcasts trainable parameters to fp32 for FSDP. DeepSpeed keeps an fp32 master copy and fp32 AdamW moments:
  12 bytes per trainable parameter instead of 2 x its dtype.
- **sharding** over N processes: DDP none; ZeRO-1 optimizer states / N; ZeRO-2 gradients and optimizer states / N;
  ZeRO-3 and FSDP weights, gradients and optimizer states / N (4-bit weights stay whole: accelerate leaves bitsandbytes
  weights out of FSDP sharding) plus two layers gathered in full (the one computing, the one prefetched).
- **activations** of one micro-batch, `b = per_device_train_batch_size` samples of `s = max_length` tokens (image
  tokens included: the worst case, every sample at the limit), in the compute dtype `a` (2 bytes for bf16/fp16
  training, 4 for fp32). A Llama-style decoder layer (hidden h, key/value width kv, MLP width i, SwiGLU) keeps per
  token: the two RMSNorm inputs and outputs (4h), q (h), k and v (2 kv) for SDPA/FlashAttention, the attention output
  (h), gate, up, SiLU(gate) and their product (4i): `6h + 2kv + 4i` values; LoRA with dropout > 0 adds each adapted
  layer's dropped-out input and its mask (`6h + i` values at a + 1 bytes: without checkpointing a LoRA stage can
  keep more activations than a full one); eager attention adds the softmax (heads x s values per token, at 4 + a
  bytes). Without activation checkpointing all L layers keep theirs; with it, each layer keeps only its input (h)
  and one layer is recomputed at a time. Around the stack: the embeddings and final norm (3h), and the logits over
  the vocabulary V: the logits in `a`, their fp32 copy for the loss and the fp32 log-softmax the loss keeps
  (`V x (a + 8)` bytes a token). The vision tower sees t tokens per image (577 for CLIP ViT-L/14 at 336 px: 576
  patches + CLS): frozen, it holds its L_v + 1 hidden states (LLaVA reads the penultimate one); trained, a CLIP layer
  keeps `8h_v + 2i_v` values a token (LayerNorms, q, k, v, attention output, fc1 and GELU outputs), checkpointed
  like the decoder. The projector keeps `h_v + 2h` values per image token.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import LlavaConfig

from llava_adapt.model.components import VISION_ENCODERS
from llava_adapt.model.config import ModelConfig
from llava_adapt.plan.distributed import Distributed
from llava_adapt.plan.parameters import ParameterCounts
from llava_adapt.plan.setup import TrainingSetup

GB = 2**30  # the plan's "GB" is a GiB, as torch.cuda and nvidia-smi count
NF4_BYTES = 4.127 / 8  # NF4 + double-quantised constants, per weight (QLoRA paper, section 3)
DTYPE_BYTES = {"auto": 2, "bfloat16": 2, "float16": 2, "float32": 4}


@dataclass(frozen=True)
class Shape:
    """The sizes the activation formula reads, from a `LlavaConfig`.

    Args:
        hidden (`int`), kv (`int`), intermediate (`int`), layers (`int`), heads (`int`), vocab (`int`),
            max_positions (`int`): the language model's.
        vision_hidden (`int`), vision_intermediate (`int`), vision_layers (`int`): the vision tower's.
        vision_tokens (`int`): tokens the vision tower sees per image (patches, + CLS for CLIP).
        image_tokens (`int`): tokens one image becomes in the language model.
    """

    hidden: int
    kv: int
    intermediate: int
    layers: int
    heads: int
    vocab: int
    max_positions: int
    vision_hidden: int
    vision_intermediate: int
    vision_layers: int
    vision_tokens: int
    image_tokens: int


def shape_of(config: LlavaConfig) -> Shape:
    """The sizes of `config` that the memory estimate needs.

    Args:
        config (`LlavaConfig`): the model's configuration.
    """
    text, vision = config.text_config, config.vision_config
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    kv_heads = getattr(text, "num_key_value_heads", None) or text.num_attention_heads
    grid = (vision.image_size // vision.patch_size) ** 2
    extra = VISION_ENCODERS.get(vision.model_type, (None, "default", 1))[2]
    keeps_all = config.vision_feature_select_strategy == "full"
    return Shape(
        hidden=text.hidden_size,
        kv=kv_heads * head_dim,
        intermediate=text.intermediate_size,
        layers=text.num_hidden_layers,
        heads=text.num_attention_heads,
        vocab=text.vocab_size,
        max_positions=getattr(text, "max_position_embeddings", 2048),
        vision_hidden=vision.hidden_size,
        vision_intermediate=vision.intermediate_size,
        vision_layers=vision.num_hidden_layers,
        vision_tokens=grid + extra,
        image_tokens=grid + extra if keeps_all else grid,
    )


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated bytes per device, by term (see the module docstring).

    Args:
        weights (`float`), gradients (`float`), optimizer (`float`), gathered (`float`), activations (`float`):
            the terms, in bytes per device.
        assumptions (`tuple[str, ...]`): the dtypes and sharding assumed, in words.
    """

    weights: float
    gradients: float
    optimizer: float
    gathered: float
    activations: float
    assumptions: tuple[str, ...] = field(default=())

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.gathered + self.activations

    def in_gb(self) -> dict[str, float]:
        """The terms and the total in GB (GiB), rounded to 0.01."""
        terms = {"weights": self.weights, "gradients": self.gradients, "optimizer": self.optimizer,
                 "gathered_layers": self.gathered, "activations": self.activations, "total": self.total}  # fmt: skip
        return {key: round(value / GB, 2) for key, value in terms.items()}


def _dtypes(model: ModelConfig, setup: TrainingSetup, distributed: Distributed) -> tuple[int, int, int]:
    """Bytes per value of the loaded weights, of fully trained parameters and of LoRA adapters."""
    if setup.mode == "qlora":
        return 2, 2, 2
    load = DTYPE_BYTES[model.dtype]
    if distributed.kind == "fsdp":
        return load, 4, 4
    return load, load, load if distributed.kind == "zero3" else 4


def activation_bytes(shape: Shape, setup: TrainingSetup, model: ModelConfig, checkpointing: bool) -> float:
    """Bytes of activations one micro-batch keeps for the backward pass (see the module docstring).

    Args:
        shape (`Shape`): the model's sizes.
        setup (`TrainingSetup`): what the stage trains, with its settings (batch size, max length, precision).
        model (`ModelConfig`): the recipe's model section (dtype, attention implementation).
        checkpointing (`bool`): whether activation checkpointing is on.
    """
    settings = setup.settings
    a = 4 if settings.precision == "fp32" and DTYPE_BYTES[model.dtype] == 4 else 2
    s = settings.max_length or shape.max_positions
    h, i = shape.hidden, shape.intermediate
    per_layer = (6 * h + 2 * shape.kv + 4 * i) * a
    if setup.lora is not None and setup.lora.dropout > 0:
        per_layer += (6 * h + i) * (a + 1)  # the dropped-out input and dropout's mask (1 byte)
    if model.attn_implementation == "eager":
        per_layer += shape.heads * s * (4 + a)
    stack = shape.layers * per_layer if not checkpointing else shape.layers * h * a + per_layer
    language = s * (stack + 3 * h * a)
    logits = s * shape.vocab * (a + 8)
    hv, t = shape.vision_hidden, shape.vision_tokens
    if "vision_tower" in setup.full_parts:
        vision_layer = (8 * hv + 2 * shape.vision_intermediate) * a
        layers = shape.vision_layers
        vision = t * (layers * vision_layer if not checkpointing else layers * hv * a + vision_layer) + t * hv * a
    else:
        vision = (shape.vision_layers + 1) * t * hv * a
    projector = shape.image_tokens * (hv + 2 * h) * a
    return settings.per_device_train_batch_size * (language + logits + vision + projector)


def estimate_memory(
    shape: Shape,
    counts: ParameterCounts,
    setup: TrainingSetup,
    model: ModelConfig,
    distributed: Distributed,
    checkpointing: bool | None = None,
) -> MemoryEstimate:
    """Estimate the peak GPU memory per device of one training stage (formula in the module docstring).

    Args:
        shape (`Shape`): the model's sizes (`shape_of`).
        counts (`ParameterCounts`): its parameter counts.
        setup (`TrainingSetup`): what the stage trains, with its settings.
        model (`ModelConfig`): the recipe's model section (load dtype, attention implementation).
        distributed (`Distributed`): the training processes and what they shard.
        checkpointing (`bool`, *optional*): activation checkpointing on or off; `None` = the stage's setting.
    """
    if checkpointing is None:
        checkpointing = setup.settings.activation_checkpointing
    load, full_dtype, adapter_dtype = _dtypes(model, setup, distributed)
    trained = setup.trainable(counts)
    adapter = trained.pop("lora", 0)
    full = sum(trained.values())
    total = counts.total
    quantized = counts.lm_linear if setup.mode == "qlora" else 0
    weights = (total - quantized) * load
    if setup.lora is None:
        weights += full * (full_dtype - load)  # trained parts in their own dtype (fp32 under FSDP)
    else:
        weights += full * full_dtype + adapter * adapter_dtype  # modules_to_save copies and the adapter
    gradients = full * full_dtype + adapter * adapter_dtype
    n_trainable = full + adapter
    optimizer = 12 * n_trainable if distributed.deepspeed else 2 * gradients
    n = distributed.num_processes
    gathered = 0.0
    if distributed.shards_weights:
        weights /= n
        gathered = 2 * counts.largest_layer * load
    if distributed.shards_gradients:
        gradients /= n
    if distributed.shards_optimizer:
        optimizer /= n
    weights += quantized * NF4_BYTES
    names = {2: "bf16", 4: "fp32"}
    assumptions = [
        f"weights {names[load]}" + (", language model linear layers 4-bit NF4" if quantized else ""),
        f"trained in full: {names[full_dtype]}" if full else "",
        f"LoRA adapters: {names[adapter_dtype]}" if adapter else "",
        "AdamW: fp32 master copy + 2 fp32 moments (DeepSpeed)" if distributed.deepspeed else "AdamW: 2 moments",
        distributed.describe(),
        f"activation checkpointing {'on' if checkpointing else 'off'}",
    ]
    return MemoryEstimate(
        weights=weights,
        gradients=gradients,
        optimizer=optimizer,
        gathered=gathered,
        activations=activation_bytes(shape, setup, model, checkpointing),
        assumptions=tuple(a for a in assumptions if a),
    )
