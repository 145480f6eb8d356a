"""Parquet record files, with errors that name the file: a `.parquet` that is not Parquet (an HTML error page saved
under that name, a file cut short by a failed download) is one clear error, not a traceback from pyarrow."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from llava_adapt.data.jsonl import RecordFileError


def _open(path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise RecordFileError(
            f"{path}: not a readable Parquet file ({exc}); download it again, or convert it to Parquet"
        ) from None


def parquet_row_count(path: str | os.PathLike[str]) -> int:
    """The rows of a Parquet file, from its footer (nothing else is read).

    Raises:
        RecordFileError: the file is not Parquet (names it).
    """
    return _open(Path(path)).metadata.num_rows


def parquet_rows(path: str | os.PathLike[str], batch_size: int = 1024) -> Iterator[dict[str, Any]]:
    """Yield each row of a Parquet file as a dict, `batch_size` rows in memory at a time.

    Args:
        path (`str | os.PathLike`): the file.
        batch_size (`int`, defaults to `1024`): rows decoded at once.

    Raises:
        RecordFileError: the file is not Parquet, or its data is damaged (names it).
    """
    import pyarrow as pa

    path = Path(path)
    reader = _open(path)
    try:
        for batch in reader.iter_batches(batch_size=batch_size):
            yield from batch.to_pylist()
    except (pa.ArrowException, OSError) as exc:
        raise RecordFileError(f"{path}: damaged Parquet data ({exc}); download it again") from None
