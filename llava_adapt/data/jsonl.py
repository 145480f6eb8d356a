"""JSON Lines I/O for records, with errors that point at the file and line."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from llava_adapt.errors import InputError
from llava_adapt.run.atomic import atomic_path


class RecordFileError(InputError, ValueError):
    """A record file is malformed. The message names the file and the line."""


NOT_UTF8_ADVICE = "save it as UTF-8 (e.g. `iconv -f latin1 -t utf-8 FILE > FILE.utf8`)"


def read_jsonl(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield `(line_number, object)` for each non-empty line of a JSON Lines file (UTF-8; a byte-order mark at the
    start is accepted).

    Raises:
        RecordFileError: a line is not UTF-8, not valid JSON or not a JSON object (message names file and line).
    """
    path = Path(path)
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise RecordFileError(
                    f"{path}:{number}: not UTF-8 text (byte {raw[exc.start]:#04x} at column {exc.start + 1}); "
                    + NOT_UTF8_ADVICE
                ) from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RecordFileError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise RecordFileError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
            yield number, obj


def read_json(path: str | os.PathLike[str]) -> Any:
    """The JSON value of a whole file (UTF-8, a byte-order mark accepted).

    Raises:
        RecordFileError: the file is not UTF-8 or not valid JSON (names file, line and column).
    """
    path = Path(path)
    try:
        return json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise RecordFileError(f"{path}: not UTF-8 text (byte offset {exc.start}); {NOT_UTF8_ADVICE}") from None
    except json.JSONDecodeError as exc:
        raise RecordFileError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})") from None


def read_json_list(path: str | os.PathLike[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield `(location, object)` for each object of a file holding one JSON list; location reads
    `"file: record N"`.

    Raises:
        RecordFileError: the file is not UTF-8, not valid JSON, not a list, or holds something other than objects.
    """
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, list):
        raise RecordFileError(f"{path}: expected a JSON list of records, got {type(data).__name__}")
    for index, obj in enumerate(data):
        if not isinstance(obj, dict):
            raise RecordFileError(f"{path}: record {index}: expected a JSON object, got {type(obj).__name__}")
        yield f"{path}: record {index}", obj


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> int:
    """Atomically write `rows` as JSON Lines to `path`; return the number of rows written."""
    count = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count
