"""Reading stage-2 data in LLaVA's JSON conversation format, from JSON, JSON Lines or Parquet.

A record is `{"id", "image" (optional, relative to the image folder), "conversations": [{"from": "human" | "gpt",
"value": str}, ...]}` (LLaVA's `docs/Finetune_Custom_Data.md`). The `<image>` placeholder may sit before or after
the text of the first human turn (LLaVA-Med and ScienceQA put it after); a record with an image but no placeholder
gets it at the start of the first human turn, as LLaVA's `preprocess_multimodal` does.

Every problem raises `RecordFileError` naming the file and the line (JSON Lines) or record index (JSON, Parquet).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from llava_adapt.data.jsonl import RecordFileError, read_json_list, read_jsonl
from llava_adapt.data.records import GPT, HUMAN, Conversation

IMAGE_PLACEHOLDER = "<image>"
SUFFIXES = (".json", ".jsonl", ".parquet")


def _rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield `(location, raw record)`; the location reads `file:line` or `file: record N`."""
    if path.suffix == ".jsonl":
        for line, obj in read_jsonl(path):
            yield f"{path}:{line}", obj
    elif path.suffix == ".json":
        yield from read_json_list(path)
    elif path.suffix == ".parquet":
        import pyarrow.parquet as pq

        for index, obj in enumerate(pq.read_table(path).to_pylist()):
            yield f"{path}: record {index}", obj
    else:
        raise RecordFileError(f"{path}: unsupported file type {path.suffix!r}; use one of {', '.join(SUFFIXES)}")


def parse_conversation(obj: dict[str, Any], where: str) -> Conversation:
    """Validate one raw LLaVA record and return it as a `Conversation`.

    Args:
        obj (`dict`): the raw record.
        where (`str`): its location, used in error messages (`file:line` or `file: record N`).

    Raises:
        RecordFileError: a field is missing or has the wrong type, the turns do not alternate human/gpt starting
            with human, or the placeholder count is wrong.
    """
    if "id" not in obj:
        raise RecordFileError(f"{where}: missing field 'id'")
    if isinstance(obj["id"], bool) or not isinstance(obj["id"], (str, int)):  # an object is not the id "{'obj': 1}"
        raise RecordFileError(f"{where}: 'id' must be text or an integer, got {type(obj['id']).__name__}")
    record_id = str(obj["id"])
    where = f"{where} (id {record_id!r})"
    turns = obj.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise RecordFileError(f"{where}: 'conversations' must be a non-empty list of turns")
    image = obj.get("image")
    if image is not None and not isinstance(image, str):
        raise RecordFileError(f"{where}: 'image' must be a path string (one image per sample)")
    parsed: list[dict[str, str]] = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict) or not isinstance(turn.get("value"), str):
            raise RecordFileError(f"{where}: turn {i} must be an object with a string 'value'")
        expected = HUMAN if i % 2 == 0 else GPT
        if turn.get("from") != expected:
            raise RecordFileError(
                f"{where}: turn {i} is from {turn.get('from')!r}, expected {expected!r} "
                "(turns alternate human/gpt, starting with human)"
            )
        parsed.append({"from": expected, "value": turn["value"]})
    if parsed[-1]["from"] != GPT:
        raise RecordFileError(f"{where}: the last turn must be a 'gpt' answer")
    placeholders = sum(t["value"].count(IMAGE_PLACEHOLDER) for t in parsed)
    if image is None and placeholders:
        raise RecordFileError(f"{where}: text contains {IMAGE_PLACEHOLDER} but the record has no 'image'")
    if image is not None:
        if placeholders > 1 or IMAGE_PLACEHOLDER in "".join(t["value"] for t in parsed[1:]):
            raise RecordFileError(f"{where}: exactly one {IMAGE_PLACEHOLDER}, in the first human turn, is supported")
        if placeholders == 0:
            parsed[0] = {"from": HUMAN, "value": f"{IMAGE_PLACEHOLDER}\n{parsed[0]['value']}"}
    return Conversation(id=record_id, image=image, conversations=parsed, source=str(obj.get("source", "")))


def read_conversations(path: str | os.PathLike[str]) -> Iterator[tuple[str, Conversation]]:
    """Yield `(location, conversation)` for every record of a LLaVA-format file.

    Args:
        path (`str | os.PathLike`): a `.json` (list of records), `.jsonl` or `.parquet` file.

    Raises:
        RecordFileError: the file or a record is malformed (the message names the file and line or record).
    """
    path = Path(path)
    if not path.is_file():
        raise RecordFileError(f"{path}: no such file")
    for where, obj in _rows(path):
        yield where, parse_conversation(obj, where)
