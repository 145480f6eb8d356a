"""Stage `prepare`: the domain's source -> checked image–caption records in `data/captions.jsonl`.

Every record is checked: its fields are text (a source that hands over a list for a caption gets `"caption is not
text"`, never `"['...']"`), its caption is neither empty nor longer than `data.max_caption_chars`, and its image
exists, stays inside the data root or the run's image folder — folders linked into the data root count as inside,
see `llava_adapt.data.paths` — and decodes completely, within a pixel budget (`llava_adapt.data.images`). Records
that fail are skipped and counted by reason, never silently dropped. An image that `convert("RGB")` would not
render faithfully (16-bit, float, transparent) is converted once into `data/images/converted/`. Image paths in the
output are relative to `data/images/` (files the source wrote there) or absolute (files under the data root).
"""

from __future__ import annotations

from pathlib import Path

from llava_adapt.data.images import CheckedImage, check_image, write_converted
from llava_adapt.data.jsonl import write_jsonl
from llava_adapt.data.paths import resolve_image
from llava_adapt.data.records import CaptionRecord, Skip
from llava_adapt.domain import SourceContext
from llava_adapt.errors import LlavaAdaptError
from llava_adapt.stages.context import StageContext


class PrepareError(LlavaAdaptError, RuntimeError):
    """The source produced nothing usable."""


def image_problem(path: Path) -> str | None:
    """Return why an image cannot be used (`"corrupt or unreadable image"`, `"image too large (decompression
    bomb)"`, ...), or `None` when it decodes completely (`llava_adapt.data.images.check_image`)."""
    checked = check_image(path)
    return None if isinstance(checked, CheckedImage) else checked


def run(ctx: StageContext) -> None:
    """Run the recipe's source and write `data/captions.jsonl`."""
    data = ctx.recipe.data
    source = ctx.domain.sources[data.source]
    args = source.args.model_validate(data.args)
    data_root = Path(data.root).expanduser()
    if not data_root.is_dir():
        raise PrepareError(f"data.root {data_root} is not a folder; point data.root at the source's files")
    output_dir = ctx.layout.images_dir
    output_dir.mkdir(parents=True, exist_ok=True)
    source_ctx = SourceContext(data_root=data_root, output_dir=output_dir, seed=ctx.recipe.seed)

    seen: set[str] = set()

    def records():
        for item in source.load(args, source_ctx):
            if isinstance(item, Skip):
                ctx.skip(item.reason)
                continue
            if not isinstance(item, CaptionRecord):
                raise PrepareError(
                    f"source {data.source!r} of domain {ctx.domain.name!r} yielded a {type(item).__name__}; "
                    "sources yield CaptionRecord or Skip"
                )
            reason = item.problem()  # a field of the wrong type
            if reason is None and item.id in seen:
                reason = "duplicate id"
            if reason is None and not item.caption.strip():
                reason = "empty caption"
            if reason is None and len(item.caption) > data.max_caption_chars:
                reason = "caption too long"
            if reason is not None:
                ctx.skip(reason)
                continue
            stored, reason = resolve_image(item.image, output_dir, data_root)
            if reason is None:
                full = output_dir / stored if not Path(stored).is_absolute() else Path(stored)
                checked = check_image(full)
                if not isinstance(checked, CheckedImage):
                    reason = checked
                elif checked.needs_conversion:
                    stored = write_converted(full, output_dir)
                    ctx.info["converted_images"] = ctx.info.get("converted_images", 0) + 1
            if reason is not None:
                ctx.skip(reason)
                continue
            seen.add(item.id)
            ctx.keep()
            row = item.to_dict()
            row["image"] = stored
            yield row

    write_jsonl(ctx.layout.captions, records())
    ctx.log.info("prepare: %d records kept, %d skipped", ctx.kept, sum(ctx.skipped.values()))
    if ctx.kept == 0:
        reasons = ", ".join(f"{r}: {n}" for r, n in ctx.skipped.items()) or "the source yielded nothing"
        raise PrepareError(f"source {data.source!r} produced no usable records ({reasons})")
