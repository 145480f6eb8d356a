"""Run `instruct` under `accelerate launch` with FSDP (one process per rank); each rank reports what it saw.

Usage: accelerate launch --config_file llava_adapt/train/accelerate_configs/fsdp.yaml --num_processes 2 \
    --mixed_precision no tests/train/fsdp_worker.py RUN_DIR [--resume]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from accelerate import PartialState
from accelerate.state import AcceleratorState
from accelerate.utils import DistributedType

from llava_adapt.stages import instruct
from tests.train.stage_helpers import context, make_recipe


def allow_fsdp_on_cpu() -> None:
    """accelerate turns FSDP on only for accelerator devices (its CPU state is `MULTI_CPU` whatever the config says);
    PyTorch's FSDP2 runs on CPU over gloo, so lift that one check: the rest is the shipped config's path."""
    init = AcceleratorState.__init__

    def patched(self, *args, fsdp_plugin=None, **kwargs) -> None:
        init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
        if fsdp_plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
            self.distributed_type, self.fsdp_plugin = DistributedType.FSDP, fsdp_plugin
            PartialState._shared_state["distributed_type"] = DistributedType.FSDP

    AcceleratorState.__init__ = patched


def main() -> None:
    allow_fsdp_on_cpu()
    PartialState(cpu=not torch.cuda.is_available())  # as `recipe run` starts it: CPU processes form one group
    run_dir, resume = Path(sys.argv[1]), "--resume" in sys.argv
    recipe = make_recipe(run_dir, instruct={"per_device_train_batch_size": 2})
    ctx = context(recipe, "instruct", resume=resume)
    seen = {}
    train_in_stage = instruct.train_in_stage

    def spy(*args, **kwargs):  # what the trainer ran under
        trainer = train_in_stage(*args, **kwargs)
        seen["distributed"] = trainer.accelerator.distributed_type.value
        seen["fsdp_version"] = trainer.accelerator.state.fsdp_plugin.fsdp_version if trainer.is_fsdp_enabled else None
        return trainer

    instruct.train_in_stage = spy
    instruct.run(ctx)
    state = PartialState()
    report = {"rank": state.process_index, "world": state.num_processes, **seen, **ctx.info}
    (run_dir / f"rank{state.process_index}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main()
