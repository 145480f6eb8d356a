"""The two files a generation run writes: conversations, and rejects (each with its reason).

Both are append-only JSON Lines, flushed as rows are written and fsynced every second and at the end. A killed run
leaves at most a torn last line, which the next run truncates; it then reads back the ids already written and
skips those jobs, so no conversation is ever written twice. (An answer that was received but not yet written is
in the request cache: the next run writes it without sending the request again.)

A reject row is `{"id", "record_id", "prompt_type", "image", "reason", "detail", "retryable", "response"}`.
Rejects with `retryable: true` (a request that still failed after all retries: rate limits, server errors,
timeouts) are removed when the next run opens the file, and their jobs are tried again.

A file the tool did not create is never modified. Before either file is created, a sidecar `OUT_STEM.generate.json`
beside the conversations file records that llava-adapt owns both; a run finds an existing, non-empty output or
rejects file that its sidecar does not list (the captions file, a user's notes, another tool's output) and stops with
an error naming it, before truncating, rewriting or appending anything.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import IO, Any

from llava_adapt import __version__
from llava_adapt.data.jsonl import RecordFileError
from llava_adapt.data.records import Conversation
from llava_adapt.errors import InputError, naming
from llava_adapt.run.atomic import atomic_path, remove_debris, write_json
from llava_adapt.scrub import scrub

OWNER = "llava-adapt generate"  # the sidecar's `written_by`


def sidecar_path(out: str | Path) -> Path:
    """The ownership sidecar of conversations file `out`: `OUT_STEM.generate.json` beside it."""
    out = Path(out)
    return out.with_name(f"{out.stem}.generate.json")


def _owned(sidecar: Path) -> set[str]:
    """The files (relative to the sidecar's folder, or absolute) an existing sidecar says llava-adapt wrote."""
    if not sidecar.is_file():
        return set()
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError(f"{sidecar} is not a llava-adapt sidecar (not JSON); move it aside") from None
    if not isinstance(data, dict) or data.get("written_by") != OWNER or not isinstance(data.get("files"), list):
        raise InputError(f"{sidecar} is not a llava-adapt sidecar; move it aside")
    return {str(name) for name in data["files"]}


def claim_outputs(out: Path, rejects: Path) -> None:
    """Make sure llava-adapt may write `out` and `rejects`, and record that it owns them (the sidecar) before
    either is created.

    Raises:
        InputError: an existing, non-empty file is not one this tool created (the message names it).
    """
    sidecar = sidecar_path(out)
    owned = _owned(sidecar)
    names = {path: os.path.relpath(path, sidecar.parent) for path in (out, rejects)}
    for path, name in names.items():
        if path.exists() and (not path.is_file() or path.stat().st_size) and name not in owned:
            raise InputError(
                f"{path} exists and was not written by llava-adapt generate (no {sidecar.name} lists it); it is left "
                "untouched: choose another output path, or move the file aside"
            )
    adopt_outputs(out, rejects)


def adopt_outputs(out: Path, rejects: Path) -> None:
    """Record that `out` and `rejects` are generate's own although no sidecar says so: for a caller that knows it
    from elsewhere (the generate stage resuming in a run directory whose manifest says it wrote them, with a
    llava-adapt from before sidecars).

    Args:
        out (`Path`): the conversations file.
        rejects (`Path`): the rejects file.
    """
    sidecar = sidecar_path(out)
    names = {os.path.relpath(path, sidecar.parent) for path in (out, rejects)}
    owned = _owned(sidecar)
    if not names <= owned:
        write_json(sidecar, {"written_by": OWNER, "version": __version__, "files": sorted(owned | names)})


def recover_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read the rows of an append-only JSONL file, truncating a torn last line (a write cut by a kill).

    Raises:
        RecordFileError: a complete line is not a JSON object (names the file and line).
    """
    if not path.exists():
        return []
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with open(path, "r+b") as fh:
            fh.truncate(end)
            os.fsync(fh.fileno())
    rows = []
    for number, line in enumerate(data[:end].decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RecordFileError(f"{path}:{number}: not valid JSON ({exc.msg}); remove the line to resume") from None
        if not isinstance(row, dict) or "id" not in row:
            raise RecordFileError(f"{path}:{number}: expected a JSON object with an 'id'")
        rows.append(row)
    return rows


class ResultWriter:
    """Appends conversations to `out` and rejects to `rejects`, resuming whatever a previous run wrote.

    Args:
        out (`str | Path`): the conversations file.
        rejects (`str | Path`): the rejects file.
        sync_every_s (`float`, defaults to `1.0`): fsync both files at most this often (and on `close`).

    Attributes:
        done (`set[str]`): ids already in either file (skip these jobs).
        resumed_ok (`int`): conversations found from a previous run.
        resumed_rejects (`Counter[str]`): rejects found from a previous run, by reason.
        retrying (`int`): retryable rejects removed so that their jobs run again.
    """

    def __init__(self, out: str | Path, rejects: str | Path, sync_every_s: float = 1.0) -> None:
        self.out_path, self.rejects_path = Path(out), Path(rejects)
        self.sync_every_s = sync_every_s
        claim_outputs(self.out_path, self.rejects_path)  # before anything is truncated, rewritten or appended
        # a killed rewrite of the rejects (or of the sidecar) leaves a temporary beside it
        for path in (self.out_path, self.rejects_path, sidecar_path(self.out_path)):
            remove_debris(path.parent, names=(path.name,), recursive=False)
        ok_rows = recover_jsonl(self.out_path)
        reject_rows = recover_jsonl(self.rejects_path)
        keep = [r for r in reject_rows if not r.get("retryable")]
        self.retrying = len(reject_rows) - len(keep)
        if self.retrying:
            with atomic_path(self.rejects_path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
                fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in keep)
        self.done: set[str] = {r["id"] for r in ok_rows} | {r["id"] for r in keep}
        self.resumed_ok = len(ok_rows)
        self.resumed_rejects: Counter[str] = Counter(str(r.get("reason", "unknown")) for r in keep)
        self.out_path.parent.mkdir(parents=True, exist_ok=True)
        self.rejects_path.parent.mkdir(parents=True, exist_ok=True)
        self._out: IO[str] = open(self.out_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._rejects: IO[str] = open(self.rejects_path, "a", encoding="utf-8")  # noqa: SIM115
        self._last_sync = time.monotonic()

    def _append(self, fh: IO[str], row: dict[str, Any]) -> None:
        if row["id"] in self.done:
            raise RuntimeError(f"internal error: {row['id']!r} would be written twice")
        try:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        except OSError as exc:  # a full disk: say which file
            raise naming(exc, fh.name) from None
        self.done.add(row["id"])
        if time.monotonic() - self._last_sync >= self.sync_every_s:
            self.sync()

    def write(self, conversation: Conversation) -> None:
        """Append one conversation."""
        self._append(self._out, conversation.to_dict())

    def reject(
        self,
        job_id: str,
        record_id: str,
        prompt_type: str,
        image: str,
        reason: str,
        detail: str = "",
        retryable: bool = False,
        response: str | None = None,
    ) -> None:
        """Append one reject with its reason (and the response text, when there was one)."""
        row = {
            "id": job_id,
            "record_id": record_id,
            "prompt_type": prompt_type,
            "image": image,
            "reason": reason,
            "detail": scrub(detail),
            "retryable": retryable,
        }
        if response is not None:
            row["response"] = response
        self._append(self._rejects, row)

    def sync(self) -> None:
        """Flush and fsync both files."""
        for fh in (self._out, self._rejects):
            try:
                fh.flush()
                os.fsync(fh.fileno())
            except OSError as exc:  # a full disk: say which file
                raise naming(exc, fh.name) from None
        self._last_sync = time.monotonic()

    def close(self, quiet: bool = False) -> None:
        """Sync and close both files.

        Args:
            quiet (`bool`, defaults to `False`): ignore write errors (an error is already on its way: a full disk
                must be reported once, not again by every flush that follows it).
        """
        if self._out.closed:
            return
        try:
            self.sync()
        except OSError:
            if not quiet:
                raise
        finally:
            for fh in (self._out, self._rejects):
                try:
                    fh.close()
                except OSError:
                    if not quiet:
                        raise

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(quiet=exc_type is not None)
