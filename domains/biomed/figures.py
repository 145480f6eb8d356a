"""Source `figures`: figure–caption records as LLaVA-Med and PMC-OA publish them.

Accepted files (relative to the data root):

- LLaVA-Med `llava_med_instruct_fig_captions.json`: a dict of domain → list of
  `{pair_id, pmid, fig_label, fig_caption, in_text_mention: [str | {"tokens": str}], domain: {chest_xray: bool,
  ct_scan, mri, histology, gross}}`, images as `<image_dir>/<pair_id>.jpg`; also a plain JSON list of the same.
- PMC-OA `train.jsonl` / `valid.jsonl` / `test.jsonl`: `{image: "PMC212319_Fig3_4.jpg", caption, pmcid}`.
- LLaVA-format alignment JSON (`llava_med_alignment_500k.json`): `{id, image, conversations}`; the caption is the
  first `gpt` turn.
- Any of the above as Parquet (one row per record, same field names).

Field names can be overridden (`image_field`, `caption_field`, `id_field`). A row without a caption or an image is
skipped and counted, and so is a row whose caption, image or id has the wrong JSON type (`"caption is not text"`: a
list is never turned into the text `"['...']"`); an image path that escapes the data root is skipped and counted
(never read); a malformed JSON line, a file that is not UTF-8, or a `.parquet` that is not Parquet stops the run
with an error naming the file (and line).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llava_adapt.plugin import (
    CaptionRecord,
    RecordFileError,
    Skip,
    SourceContext,
    parquet_row_count,
    parquet_rows,
    read_json,
    read_jsonl,
    relative_to_root,
)

from .files import inside, resolve_input

# LLaVA-Med's domain flags, in the order its scripts pick "the" domain of a figure, and their readable names.
DOMAIN_FLAGS: dict[str, str] = {
    "chest_xray": "chest X-ray",
    "mri": "MRI",
    "histology": "histology",
    "gross": "gross pathology",
    "ct_scan": "CT",
}


class FigureSourceArgs(BaseModel):
    """Arguments of the `figures` source (recipe `data.args`).

    Args:
        path (`str`): the record file (`.json`, `.jsonl` or `.parquet`), relative to the data root.
        image_dir (`str`, defaults to `"images"`): folder of the images, relative to the data root.
        format (`"auto" | "json" | "jsonl" | "parquet"`, defaults to `"auto"`): file format; `auto` uses the suffix.
        image_field (`str | None`, defaults to `None`): column holding the image path; by default `image`, else
            `<pair_id>` + `image_suffix`.
        caption_field (`str | None`, defaults to `None`): column holding the caption; by default `fig_caption`,
            `caption`, or the first `gpt` turn of `conversations`.
        id_field (`str | None`, defaults to `None`): column holding the id; by default `pair_id`, `id`, the image.
        image_suffix (`str`, defaults to `".jpg"`): suffix added to `pair_id` when there is no image column.
        mentions (`bool`, defaults to `True`): keep in-text mentions as context (LLaVA-Med's "inline mention"
            variant; set `False` for the caption-only variant).
        limit (`int | None`, defaults to `None`): stop after this many records.
    """

    model_config = ConfigDict(extra="forbid")

    path: str
    image_dir: str = "images"
    format: Literal["auto", "json", "jsonl", "parquet"] = "auto"
    image_field: str | None = None
    caption_field: str | None = None
    id_field: str | None = None
    image_suffix: str = ".jpg"
    mentions: bool = True
    limit: int | None = Field(None, ge=1)


def load(args: FigureSourceArgs, ctx: SourceContext) -> Iterator[CaptionRecord | Skip]:
    """Yield one `CaptionRecord` per figure row (see the module docstring)."""
    path = resolve_input(ctx.data_root, args.path, "figure-caption file")
    image_dir = resolve_input(ctx.data_root, args.image_dir, "image folder")
    count = 0
    for where, row in _rows(path, args.format):
        item = _record(row, where, image_dir, ctx.data_root, args)
        yield item
        if isinstance(item, CaptionRecord):
            count += 1
            if args.limit is not None and count >= args.limit:
                return


def count(args: FigureSourceArgs, ctx: SourceContext) -> int | None:
    """The rows of the record file (at most `limit`): the records `load` yields before any is skipped; `None` when
    the file is not there or cannot be read (then `prepare` says why)."""
    path = inside(ctx.data_root, args.path)
    if path is None or not path.is_file():
        return None
    fmt = args.format if args.format != "auto" else path.suffix.lower().lstrip(".")
    try:
        rows = parquet_row_count(path) if fmt == "parquet" else sum(1 for _ in _rows(path, fmt))
    except (RecordFileError, OSError):
        return None
    return rows if args.limit is None else min(rows, args.limit)


def _rows(path: Path, fmt: str) -> Iterator[tuple[str, dict[str, Any]]]:
    fmt = fmt if fmt != "auto" else path.suffix.lower().lstrip(".")
    if fmt == "jsonl":
        for number, obj in read_jsonl(path):
            yield f"{path}:{number}", obj
    elif fmt == "json":
        data = read_json(path)
        groups = data.values() if isinstance(data, dict) else [data]
        for group in groups:
            if not isinstance(group, list):
                raise RecordFileError(f"{path}: expected a list of records or a dict of domain -> list")
            for index, obj in enumerate(group):
                if not isinstance(obj, dict):
                    raise RecordFileError(f"{path}: record {index} is a {type(obj).__name__}, expected an object")
                yield f"{path}[{index}]", obj
    elif fmt == "parquet":
        for number, obj in enumerate(parquet_rows(path)):
            yield f"{path}#row{number}", obj
    else:
        raise RecordFileError(f"{path}: unknown format {fmt!r}; use .json, .jsonl or .parquet (or set format)")


def _record(row: dict[str, Any], where: str, image_dir: Path, data_root: Path, args: FigureSourceArgs):
    caption = _caption(row, args.caption_field)
    if caption is None:
        return Skip(where, "caption is not text")
    if not caption:
        return Skip(where, "missing caption")
    image = row.get(args.image_field or "image")
    if not image and row.get("pair_id") and not args.image_field:
        image = f"{row['pair_id']}{args.image_suffix}"
    if isinstance(image, dict):  # a Parquet image struct with a relative path
        image = image.get("path")
    if not image:
        return Skip(where, "missing image")
    if not isinstance(image, str):
        return Skip(where, "image path is not text")
    full = inside(image_dir, str(image))
    stored = None if full is None else relative_to_root(data_root, full)
    if stored is None:
        return Skip(where, "image path escapes the data root")
    record_id = row.get(args.id_field) if args.id_field else row.get("pair_id") or row.get("id") or image
    if isinstance(record_id, bool) or not isinstance(record_id, (str, int)):  # an object id is not "{'obj': 1}"
        return Skip(where, "id is not text")
    context: dict[str, str] = {}
    if row.get("fig_label"):
        context["figure_label"] = str(row["fig_label"])
    if args.mentions:
        mentions = _mentions(row.get("in_text_mention"))
        if mentions:
            context["in_text_mentions"] = "\n".join(mentions)
    modality = _modality(row.get("domain"))
    if modality:
        context["modality"] = modality
    labels = {key: str(row[key]) for key in ("pmid", "pmcid") if row.get(key)}
    if modality:
        labels["modality"] = modality.lower()
    return CaptionRecord(
        id=str(record_id),
        image=stored,
        caption=caption,
        context=context,
        labels=labels,
    )


def _caption(row: dict[str, Any], field: str | None) -> str | None:
    """The caption with its whitespace normalised; `""` when there is none, `None` when it is not text."""
    if field:
        return _text(row.get(field))
    for key in ("fig_caption", "caption"):
        if row.get(key):
            return _text(row[key])
    for turn in row.get("conversations") or []:
        if isinstance(turn, dict) and turn.get("from") == "gpt" and turn.get("value"):
            return _text(turn["value"])
    return ""


def _text(value: Any) -> str | None:
    if value is None:
        return ""
    return " ".join(value.split()) if isinstance(value, str) else None


def _mentions(value: Any) -> list[str]:
    if not value:
        return []
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        text = _text(item.get("tokens") if isinstance(item, dict) else item)  # a mention that is not text is left out
        if text:
            out.append(text)
    return out


def _modality(flags: Any) -> str:
    if not isinstance(flags, dict):
        return ""
    for key, name in DOMAIN_FLAGS.items():
        if flags.get(key):
            return name
    return ""
