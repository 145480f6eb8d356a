"""How many processes train, and what they shard: from `--num-gpus` and an accelerate config (one of the shipped ones
in `llava_adapt/train/accelerate_configs/`, by name, or any accelerate YAML file).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from llava_adapt.plan.errors import PlanError

# What each kind keeps whole on every device and what it splits across the processes.
SHARDING: dict[str, str] = {
    "single": "one process: nothing sharded",
    "ddp": "DDP: every device holds everything",
    "zero1": "DeepSpeed ZeRO-1: optimizer states sharded",
    "zero2": "DeepSpeed ZeRO-2: gradients and optimizer states sharded",
    "zero3": "DeepSpeed ZeRO-3: weights, gradients and optimizer states sharded",
    "fsdp": "FSDP: weights, gradients and optimizer states sharded",
}


@dataclass(frozen=True)
class Distributed:
    """The training processes of a run.

    Args:
        kind (`str`): one of `SHARDING`'s keys.
        num_processes (`int`): how many processes (one per GPU) train.
        source (`str`, defaults to `""`): the accelerate config it was read from.
    """

    kind: str
    num_processes: int
    source: str = ""

    @property
    def deepspeed(self) -> bool:
        return self.kind.startswith("zero")

    @property
    def shards_optimizer(self) -> bool:
        return self.kind in ("zero1", "zero2", "zero3", "fsdp")

    @property
    def shards_gradients(self) -> bool:
        return self.kind in ("zero2", "zero3", "fsdp")

    @property
    def shards_weights(self) -> bool:
        return self.kind in ("zero3", "fsdp")

    def describe(self) -> str:
        return f"{self.num_processes} x GPU, {SHARDING[self.kind]}" + (f" ({self.source})" if self.source else "")


def shipped_configs() -> dict[str, Path]:
    """The accelerate configs llava-adapt ships, by name (`ddp`, `zero2`, `zero3`, `fsdp`, `ddp_cpu`)."""
    folder = resources.files("llava_adapt.train.accelerate_configs")
    return {Path(entry.name).stem: Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".yaml")}


def _kind(config: dict, where: str) -> str:
    kind = str(config.get("distributed_type") or "NO").upper()
    if kind == "DEEPSPEED":
        stage = int((config.get("deepspeed_config") or {}).get("zero_stage", 0))
        if stage not in (1, 2, 3):
            raise PlanError(f"{where}: deepspeed_config.zero_stage {stage} is not planned; use 1, 2 or 3")
        return f"zero{stage}"
    if kind == "FSDP":
        return "fsdp"
    if kind in ("MULTI_GPU", "MULTI_CPU"):
        return "ddp"
    if kind == "NO":
        return "single"
    raise PlanError(f"{where}: distributed_type {kind!r} is not planned; use MULTI_GPU, DEEPSPEED or FSDP")


def read_accelerate_config(name_or_path: str) -> Distributed:
    """The processes an accelerate config launches and what they shard.

    Args:
        name_or_path (`str`): a shipped config's name (`ddp`, `zero2`, `zero3`, `fsdp`) or a YAML file.

    Raises:
        PlanError: the file does not exist or its distributed type is not one the plan knows.
    """
    shipped = shipped_configs()
    path = shipped.get(name_or_path, Path(name_or_path).expanduser())
    if not path.is_file():
        raise PlanError(
            f"--accelerate-config {name_or_path!r} is neither a shipped config ({', '.join(sorted(shipped))}) "
            "nor a file"
        )
    config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(config, dict):
        raise PlanError(f"{path} is not an accelerate config (a YAML mapping)")
    return Distributed(_kind(config, str(path)), int(config.get("num_processes") or 1), path.name)


def resolve_distributed(accelerate_config: str | None = None, num_gpus: int | None = None) -> Distributed:
    """The training processes of a planned run.

    Args:
        accelerate_config (`str`, *optional*): a shipped accelerate config's name or a YAML path; `None` = plain
            data parallelism (DDP) over `num_gpus`, or a single process.
        num_gpus (`int`, *optional*): the number of processes; overrides the config's `num_processes`. Defaults to
            the config's, else 1.
    """
    if accelerate_config is None:
        n = num_gpus or 1
        return Distributed("single" if n == 1 else "ddp", n)
    distributed = read_accelerate_config(accelerate_config)
    if num_gpus is None:
        return distributed
    return Distributed(distributed.kind, num_gpus, distributed.source)
