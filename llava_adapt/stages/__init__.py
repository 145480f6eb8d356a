"""The pipeline stages. Each module has one `run(ctx: StageContext) -> None` function.

Stages are looked up lazily by name (`load_stage`) so that `recipe validate` never imports torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from llava_adapt.run.stage_table import STAGES
from llava_adapt.stages.context import StageContext


def load_stage(name: str) -> Callable[[StageContext], None]:
    """Import and return the `run` function of stage `name` (its `StageSpec.module`)."""
    return importlib.import_module(STAGES[name].module).run


__all__ = ["StageContext", "load_stage"]
