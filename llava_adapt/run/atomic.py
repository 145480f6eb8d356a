"""Atomic file writes: write to a temporary name in the same folder, then rename.

A killed process therefore never leaves a half-written file under the final name: either the old content (or no
file) is there, or the complete new one. What a killed writer leaves instead — its temporary folder
`.NAME.PID.XXXXXXXX.tmp` beside the final path, or the `.NAME.old` of a folder it was swapping — is removed by
`remove_debris` (the pipeline sweeps the run directory before each run; `data generate` sweeps beside its outputs).

Files and folders a write produces get the permissions of any other file the user creates (`0o666` / `0o777` minus
the umask): libraries that write through a private temporary file (safetensors writes weights `0600`) would
otherwise leave weights unreadable to the group and others while everything beside them is readable.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from llava_adapt.errors import naming


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _read_umask()  # read once, at import: os.umask can only be read by setting it
# `.NAME.PID.XXXXXXXX.tmp`: the temporary folder `atomic_path` makes (tempfile's 8 random characters)
TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[a-z0-9_]{8}\.tmp$")
SWAPPED_OUT = re.compile(r"^\.(?P<name>.+)\.old$")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success rename it onto `path`, on error delete it.

    Works for files and for folders (e.g. a model saved with `save_pretrained`): the caller creates whatever it
    wants at the yielded path. An existing folder at `path` is replaced.

    Args:
        path (`str | os.PathLike`): the final path.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.{os.getpid()}.", suffix=".tmp", dir=final.parent)) / "x"
    try:
        try:
            yield tmp
        except OSError as exc:  # a full disk while writing the temporary: name the file the user knows
            if exc.filename is None or str(tmp.parent) in str(exc.filename):
                raise naming(exc, final) from None
            raise
        share_modes(tmp)
        if final.is_dir() and tmp.is_dir():
            old = final.with_name(f".{final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            if tmp.is_file():
                with contextlib.suppress(OSError), open(tmp, "rb") as fh:
                    os.fsync(fh.fileno())
            os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)


def share_modes(path: str | os.PathLike[str]) -> None:
    """Give `path` (a file, or a folder and everything in it) the permissions of a file the user creates:
    `0o666` (files) or `0o777` (folders) minus the umask, execute bits of files kept.

    Args:
        path (`str | os.PathLike`): what a write produced; a missing path is left alone.
    """
    root = Path(path)
    if not root.exists() or root.is_symlink():
        return
    entries = [root] if not root.is_dir() else [root, *root.rglob("*")]
    for entry in entries:
        if entry.is_symlink():
            continue
        mode = stat.S_IMODE(entry.stat().st_mode)
        wanted = (0o777 if entry.is_dir() else 0o666 | (mode & 0o111)) & ~UMASK
        if mode != wanted:
            with contextlib.suppress(OSError):  # a file someone else owns keeps its mode
                entry.chmod(wanted)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # another user's process, or a platform that cannot tell: keep its files
    return True


def remove_debris(folder: str | os.PathLike[str], names: tuple[str, ...] | None = None, recursive: bool = True) -> int:
    """Remove what killed writers left in `folder`: `atomic_path` temporaries whose process is gone, and the
    `.NAME.old` folder of an interrupted folder swap (put back as `NAME` when `NAME` is missing, else removed).

    Args:
        folder (`str | os.PathLike`): where to look (a run directory, or the folder of an output file).
        names (`tuple[str, ...]`, *optional*): only debris of these final names (e.g. an output file's name);
            by default every name.
        recursive (`bool`, defaults to `True`): also look in subfolders.

    Returns:
        How many entries were removed or put back.
    """
    root = Path(folder)
    if not root.is_dir():
        return 0
    removed = 0
    for current, dirs, files in os.walk(root):
        here = Path(current)
        for entry in sorted([*dirs, *files]):
            temporary, swapped = TEMPORARY.match(entry), SWAPPED_OUT.match(entry)
            match = temporary or swapped
            if match is None or (names is not None and match["name"] not in names):
                continue
            if temporary and _alive(int(temporary["pid"])):
                continue
            if swapped and not (here / match["name"]).exists():
                (here / entry).rename(here / match["name"])
            elif (here / entry).is_dir() and not (here / entry).is_symlink():
                shutil.rmtree(here / entry, ignore_errors=True)
            else:
                (here / entry).unlink(missing_ok=True)
            removed += 1
            if entry in dirs:
                dirs.remove(entry)
        if not recursive:
            break
    return removed


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Atomically write `text` (UTF-8) to `path`."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], data: Any, indent: int = 2) -> None:
    """Atomically write `data` as pretty JSON to `path`."""
    write_text(path, json.dumps(data, indent=indent, ensure_ascii=False, sort_keys=False) + "\n")
