"""The pipeline stages. Each module has one `run(ctx: StageContext) -> None` function.

Stages are looked up lazily by name (`load_stage`) so that `recipe validate` never imports torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from llava_adapt.stages.context import StageContext

# stage name -> (module implementing it, recipe sections its config hash covers)
STAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "prepare": ("llava_adapt.stages.prepare", ("domain", "seed", "data")),
    "generate": ("llava_adapt.stages.generate", ("generate",)),
    "align": ("llava_adapt.stages.align", ("model", "align")),
    "instruct": ("llava_adapt.stages.instruct", ("instruct",)),
    # seed, model and data too: without align/instruct it starts from the model, and its benchmark reads data.root
    "finetune": ("llava_adapt.stages.finetune", ("seed", "model", "data", "finetune")),
    "evaluate": ("llava_adapt.stages.evaluate", ("evaluate",)),
    "publish": ("llava_adapt.stages.publish", ("publish",)),
}


def load_stage(name: str) -> Callable[[StageContext], None]:
    """Import and return the `run` function of stage `name`."""
    module_name, _ = STAGES[name]
    return importlib.import_module(module_name).run


__all__ = ["STAGES", "StageContext", "load_stage"]
