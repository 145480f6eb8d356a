"""Read ScienceQA in the layouts people download it in.

- `lupantech`: the original release (`lupantech/ScienceQA`, `tools/download.sh`)::

      problems.json        {pid: {question, choices, answer, hint, image, task, grade, subject, ..., split}}
      pid_splits.json      {"train": [pid, ...], "val": [...], "test": [...], "minival": [...], ...}
      images/<split>/<pid>/image.png

  Problems come in `pid_splits.json` order (the order LLaVA's scripts use). Without `pid_splits.json` the
  problems' own `split` field selects them. Images are looked up in `images/<split>/<pid>/`, then
  `images/<pid>/` (a flattened copy, as LLaVA's `--image-folder` expects), then `<split>/<pid>/`.
- `parquet`: the Hugging Face copy `derek-thomas/ScienceQA` (`data/{train,validation,test}-*.parquet`, columns
  `image` ({"bytes", "path"} or null), `question`, `choices`, `answer`, `hint`, `task`, `grade`, `subject`,
  `topic`, `category`, `skill`, `lecture`, `solution`). Rows have no id; a problem's id is `"{split}_{row:05d}"`
  (row counted over the split's files in name order). The HF split `validation` is the lupantech `val`.
- `llava`: see `llava_json.py`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from llava_adapt.plugin import DataError, Skip, relative_to_root

from .images import find_image
from .problems import Problem, ProblemError, problem_from_mapping

Layout = Literal["auto", "lupantech", "parquet", "llava"]
HF_SPLITS = {"val": "validation", "validation": "validation", "train": "train", "test": "test"}


class LayoutError(DataError, ValueError):
    """The dataset folder is not in a layout this domain reads, or a file in it is malformed."""


def load_json(path: Path) -> Any:
    """Read a JSON file, with errors that name it."""
    if not path.is_file():
        raise LayoutError(f"{path}: file not found")
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise LayoutError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except UnicodeDecodeError as exc:
        raise LayoutError(f"{path}: not UTF-8 text (byte offset {exc.start}); save it as UTF-8") from None


def lupantech_dir(path: Path) -> Path | None:
    """The folder holding `problems.json` at or below `path` (also `data/scienceqa/`), or `None`."""
    for candidate in (path, path / "data" / "scienceqa", path / "scienceqa"):
        if (candidate / "problems.json").is_file():
            return candidate
    return None


def parquet_files(path: Path, split: str) -> list[Path]:
    """The parquet files of `split` at `path` (a file, or a folder searched recursively, HF naming)."""
    if path.is_file():
        return [path] if path.suffix == ".parquet" else []
    hf_split = HF_SPLITS.get(split, split)
    return sorted(
        p
        for p in path.rglob("*.parquet")
        if p.name.startswith((f"{hf_split}-", f"{hf_split}.")) or p.parent.name == hf_split
    )


def detect_layout(path: Path, split: str) -> Literal["lupantech", "parquet", "llava"]:
    """Guess the layout of `path` for `split`.

    Raises:
        LayoutError: when none fits, saying what was looked for.
    """
    if lupantech_dir(path) is not None:
        return "lupantech"
    if parquet_files(path, split):
        return "parquet"
    if path.is_file() and path.suffix == ".json":
        return "llava"
    raise LayoutError(
        f"{path}: no ScienceQA data found for split {split!r}. Expected problems.json + pid_splits.json + "
        f"images/ (lupantech/ScienceQA), {HF_SPLITS.get(split, split)}-*.parquet files (derek-thomas/ScienceQA), "
        "or a LLaVA-converted llava_<split>_<format>.json file"
    )


def read_lupantech(path: Path, split: str) -> Iterator[Problem | Skip]:
    """Yield the problems of `split` from a lupantech-layout folder; a missing or escaping image is a `Skip`.

    A problem's `image_path` is relative to `path`.

    Args:
        path (`Path`): the folder (or a parent with `data/scienceqa/`).
        split (`str`): a key of `pid_splits.json` (`train`, `val`, `test`, `minival`, `minitest`).

    Raises:
        LayoutError: missing/malformed `problems.json` or `pid_splits.json`, unknown split or problem id.
        ProblemError: a malformed problem (naming file, id and key).
    """
    folder = lupantech_dir(path)
    if folder is None:
        raise LayoutError(f"{path}: no problems.json here or in data/scienceqa/")
    problems_file = folder / "problems.json"
    problems = load_json(problems_file)
    if not isinstance(problems, dict):
        raise LayoutError(f"{problems_file}: expected a JSON object keyed by problem id")
    splits_file = folder / "pid_splits.json"
    if splits_file.is_file():
        splits = load_json(splits_file)
        if not isinstance(splits, dict) or split not in splits:
            known = ", ".join(sorted(splits)) if isinstance(splits, dict) else "none"
            raise LayoutError(f"{splits_file}: no split {split!r} (splits: {known})")
        pids = splits[split]
        if not isinstance(pids, list):
            raise LayoutError(f"{splits_file}: split {split!r} must be a list of problem ids")
    else:
        pids = [pid for pid, p in problems.items() if isinstance(p, dict) and p.get("split") == split]
        if not pids:
            raise LayoutError(f"{folder}: no pid_splits.json, and no problem in problems.json has split {split!r}")
    for pid in pids:
        pid = str(pid)
        if pid not in problems:
            raise LayoutError(f"{splits_file}: problem id {pid!r} (split {split!r}) is not in {problems_file}")
        raw = problems[pid]
        if not isinstance(raw, dict):
            raise ProblemError(f"{problems_file}: problem {pid!r}: expected a JSON object")
        image = raw.get("image")
        problem = problem_from_mapping(raw, pid, str(problems_file), split=split)
        if not image:
            yield problem
            continue
        if not isinstance(image, str):
            raise ProblemError(f"{problems_file}: problem {pid!r}: key 'image' must be a file name or null")
        own_split = str(raw.get("split") or split)
        candidates = [f"images/{own_split}/{pid}/{image}", f"images/{pid}/{image}", f"{own_split}/{pid}/{image}"]
        found, reason = find_image(folder, candidates)
        if found is None:
            yield Skip(id=pid, reason=reason or "image file missing")
            continue
        yield problem_from_mapping(raw, pid, str(problems_file), image_path=relative_to_root(path, found), split=split)


def read_parquet(path: Path, split: str) -> Iterator[Problem]:
    """Yield the problems of `split` from Hugging Face parquet files (images embedded as bytes).

    Args:
        path (`Path`): a `.parquet` file, or a folder holding `{split}-*.parquet` files (searched recursively).
        split (`str`): `train`, `val`/`validation` or `test`.

    Raises:
        LayoutError: no files, unreadable parquet, or missing columns (naming the file).
        ProblemError: a malformed row (naming file, id and key).
    """
    import pyarrow.parquet as pq

    files = parquet_files(path, split)
    if not files:
        raise LayoutError(f"{path}: no parquet files for split {split!r}")
    prefix = "val" if HF_SPLITS.get(split) == "validation" else split
    row = 0
    for file in files:
        try:
            reader = pq.ParquetFile(file)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise LayoutError(f"{file}: not a readable parquet file ({exc})") from None
        missing = {"question", "choices", "answer"} - set(reader.schema_arrow.names)
        if missing:
            raise LayoutError(f"{file}: missing column(s) {', '.join(sorted(missing))}")
        for batch in reader.iter_batches(batch_size=256):
            for raw in batch.to_pylist():
                pid = f"{prefix}_{row:05d}"
                row += 1
                image = raw.get("image")
                data = image.get("bytes") if isinstance(image, dict) else None
                if image is not None and not data:
                    raise ProblemError(f"{file}: problem {pid!r}: key 'image' has no bytes")
                yield problem_from_mapping(
                    raw, pid, str(file), image_bytes=data, has_image=data is not None, split=split
                )
