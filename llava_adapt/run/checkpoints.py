"""The trainer's `checkpoint-N` folders, found without importing torch or the trainer (the report reads them too)."""

from __future__ import annotations

import re
from pathlib import Path

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")


def last_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The checkpoint with the highest step under `checkpoint_dir` that finished saving, or `None`.

    Args:
        checkpoint_dir (`Path`): the folder of `checkpoint-N` folders (e.g. `RUN_DIR/instruct/checkpoints`); it
            may be missing.

    Returns:
        The `checkpoint-N` folder with the largest N that holds `trainer_state.json` (the trainer writes it last,
        so a checkpoint without it was interrupted while saving), or `None` when there is none.
    """
    if not checkpoint_dir.is_dir():
        return None
    found = []
    for path in checkpoint_dir.iterdir():
        match = CHECKPOINT_PATTERN.match(path.name)
        if match and (path / "trainer_state.json").is_file():
            found.append((int(match.group(1)), path))
    return max(found)[1] if found else None
