"""Stage `align` (stage 1): train the projector on image–caption pairs; everything else stays frozen.

Reads `data/captions.jsonl` (written by `prepare`), trains with LLaVA's plain format (image, caption, end of
sequence; loss on the caption only) and writes `align/`: the whole model (`config.json`, `model.safetensors`) with
its processor and chat template, loadable with `AutoModelForImageTextToText` / `AutoProcessor`; `instruct` starts
from it. Checkpoints under `align/checkpoints/` hold the same plus the trainer state, and a resumed run continues
from the last one.

With `align.projector_init` (a released stage-1 projector, LLaVA's `mm_projector.bin`) nothing is trained: the
projector is loaded into the model, which is saved into `align/` as above, and the manifest records
`projector_init` and `trained: false`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from transformers import PreTrainedModel

from llava_adapt.data.jsonl import read_jsonl
from llava_adapt.data.records import CaptionRecord
from llava_adapt.errors import LlavaAdaptError
from llava_adapt.model.load import load_model
from llava_adapt.model.modules import get_part, set_trainable
from llava_adapt.model.original import load_projector
from llava_adapt.run.atomic import atomic_path
from llava_adapt.stages.context import StageContext
from llava_adapt.stages.model_source import start_model
from llava_adapt.stages.training import train_in_stage
from llava_adapt.train.formats import TrainingSample


def caption_samples(captions: Path, images_dir: Path) -> Iterator[TrainingSample]:
    """Stage-1 samples from `prepare`'s captions (image paths relative to `images_dir`, or absolute)."""
    for _, obj in read_jsonl(captions):
        record = CaptionRecord.from_dict(obj)
        yield TrainingSample(id=record.id, image=str(images_dir / record.image), caption=record.caption)


class AlignError(LlavaAdaptError, ValueError):
    """A released projector does not fit the model."""


def load_released_projector(model: PreTrainedModel, source: str) -> None:
    """Load LLaVA's `mm_projector.bin` (file, folder or Hub repo) into `model`'s projector.

    Raises:
        AlignError: its shapes are not the model's (another vision tower or language model).
    """
    weights = load_projector(source)
    projector = get_part(model, "projector")
    expected = {k: tuple(v.shape) for k, v in projector.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in weights.items()}
    if expected != found:
        raise AlignError(
            f"align.projector_init {source!r} has shapes {found}, the model's projector {expected}: it was trained "
            "for another vision tower or language model"
        )
    projector.load_state_dict({k: v.to(projector.linear_1.weight.dtype) for k, v in weights.items()})


def run(ctx: StageContext) -> None:
    """Train the projector (or load `align.projector_init`) and save the stage-1 model into `align/`."""
    recipe, layout = ctx.recipe, ctx.layout
    model, processor = load_model(start_model(ctx), recipe.seed)
    if recipe.align.projector_init:
        load_released_projector(model, recipe.align.projector_init)
        ctx.log.info("align: loaded the released projector %s; not training", recipe.align.projector_init)
        ctx.record("projector_init", recipe.align.projector_init)
        ctx.record("trained", False)
        with atomic_path(layout.align_dir) as tmp:
            model.save_pretrained(tmp)
            processor.save_pretrained(tmp)
        return
    set_trainable(model, ["projector"])
    trainer = train_in_stage(
        ctx,
        model,
        processor,
        lambda: caption_samples(layout.captions, layout.images_dir),
        recipe.align,
        layout.align_dir,
        data_key=[layout.captions, "plain"],
    )
    trainer.save_model(str(layout.align_dir))
