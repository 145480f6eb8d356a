"""The model a run starts from, as the stages load it: the recipe's `model:` section, except that an original-format
LLaVA checkpoint (LLaVA-1.5, LLaVA-Med v1.5: `Llava{Llama,Mistral}ForCausalLM`) is converted once into the run's
`converted/` folder (`llava-adapt convert`'s conversion) and loaded from there."""

from __future__ import annotations

from accelerate import PartialState

from llava_adapt.model.config import ModelConfig
from llava_adapt.model.load import resolve_dtype
from llava_adapt.model.original import CONVERSION_FILE, convert_original, is_original_config, read_config
from llava_adapt.stages.context import StageContext


def start_model(ctx: StageContext) -> ModelConfig:
    """The recipe's model section, with `name_or_path` pointing at the run's conversion when the recipe names an
    original-format checkpoint (converted on first use, by the main process; recorded as `converted_from`).

    Args:
        ctx (`StageContext`): the stage's context.
    """
    config = ctx.recipe.model
    if config.source != "llava":
        return config
    original = read_config(config.name_or_path)
    if original is None or not is_original_config(original):
        return config
    out = ctx.layout.converted_dir
    with PartialState().main_process_first():
        if not (out / CONVERSION_FILE).is_file():
            ctx.log.info("%s: converting the original-format checkpoint %s", ctx.name, config.name_or_path)
            convert_original(config.name_or_path, out, dtype=resolve_dtype(config.dtype))
    ctx.record("converted_from", config.name_or_path)
    return config.model_copy(update={"name_or_path": str(out.resolve())})
