"""Source `llava_pretrain`: LLaVA's stage-1 image–caption data (LCS-558K) in the files LLaVA publishes.

Accepted files (relative to the data root), as one JSON list (`.json`) or JSON Lines (`.jsonl`) of records:

- `blip_laion_cc_sbu_558k.json`, or any LLaVA pretraining file in the same format (CC-3M 595K `chat.json`,
  LLaVA-Med's alignment JSON): `{"id", "image": "00000/000000010.jpg", "conversations": [{"from": "human",
  "value": "<image>\\nRender a clear and concise summary of the photo."}, {"from": "gpt", "value": caption}]}`.
  The caption is the `gpt` turn. The human instruction is dropped, as LLaVA's `preprocess_plain` drops it: stage 1
  trains on the image and the caption alone.
- `blip_laion_cc_sbu_558k_meta.json`: `{"id", "image", "blip_caption", "url"}`; the caption is `blip_caption`.

Image paths are relative to `image_dir` (LLaVA's `--image_folder`; LCS-558K's `images.zip` unpacks into it).
A record that cannot be used is skipped and counted: `"malformed conversation"` (the checks of
`llava_adapt.data.llava_json.parse_conversation`), `"not a caption pair"` (more than one human/gpt exchange),
`"no caption"`, `"no image"` and `"image path escapes the data root"`. A file that is not valid JSON stops the run
with an error naming the file and line. Whether each image exists and decodes is checked by `prepare`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from llava_adapt.plugin import (
    CaptionRecord,
    DataError,
    RecordFileError,
    Skip,
    SourceContext,
    parse_conversation,
    read_json_list,
    read_jsonl,
)

from .paths import ESCAPES, image_path, input_path


class LlavaPretrainArgs(BaseModel):
    """Arguments of the `llava_pretrain` source (recipe `data.args`).

    Args:
        path (`str`, defaults to `"blip_laion_cc_sbu_558k.json"`): the record file (`.json` or `.jsonl`), relative
            to the data root.
        image_dir (`str`, defaults to `"images"`): the folder the records' image paths are relative to, relative to
            the data root.
        limit (`int | None`, defaults to `None`): stop after this many records, in file order.
    """

    model_config = ConfigDict(extra="forbid")

    path: str = "blip_laion_cc_sbu_558k.json"
    image_dir: str = "images"
    limit: int | None = Field(None, ge=1)


def load(args: LlavaPretrainArgs, ctx: SourceContext) -> Iterator[CaptionRecord | Skip]:
    """Yield one `CaptionRecord` per usable record of the file, a `Skip` with its reason for every other one.

    Args:
        args (`LlavaPretrainArgs`): the source's arguments.
        ctx (`SourceContext`): the data root the paths are relative to.

    Raises:
        ValueError: the file or the image folder is outside the data root, or the file is not `.json`/`.jsonl`.
        FileNotFoundError: the file or the image folder does not exist.
        RecordFileError: the file is not valid JSON (or a JSON Lines line is not a JSON object).
    """
    path = input_path(ctx.data_root, args.path, "LLaVA pretraining file")
    image_dir = input_path(ctx.data_root, args.image_dir, "image folder", kind="folder")
    root = ctx.data_root
    count = 0
    for where, row in _rows(path):
        item = _record(row, where, image_dir, root)
        yield item
        if isinstance(item, CaptionRecord):
            count += 1
            if args.limit is not None and count >= args.limit:
                return


def _rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        for line, row in read_jsonl(path):
            yield f"{path}:{line}", row
    elif suffix == ".json":
        yield from read_json_list(path)
    else:
        raise DataError(f"{path}: unsupported file type {path.suffix!r}; LLaVA pretraining data is .json or .jsonl")


def _record(row: dict[str, Any], where: str, image_dir: Path, root: Path) -> CaptionRecord | Skip:
    record_id = str(row.get("id", where))
    if "conversations" in row:
        try:
            conversation = parse_conversation(row, where)
        except RecordFileError:
            return Skip(record_id, "malformed conversation")
        if len(conversation.conversations) != 2:
            return Skip(record_id, "not a caption pair")
        caption, image = conversation.conversations[1]["value"], conversation.image
    elif isinstance(row.get("blip_caption"), str):
        caption, image = row["blip_caption"], row.get("image")
        record_id = str(row.get("id") or image or where)
    else:
        return Skip(record_id, "no caption")
    if not isinstance(image, str) or not image:
        return Skip(record_id, "no image")
    stored = image_path(root, image_dir, image)
    if stored is None:
        return Skip(record_id, ESCAPES)
    return CaptionRecord(id=record_id, image=stored, caption=caption.strip())
