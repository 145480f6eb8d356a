"""`manifest.json`: what happened to each stage of a run.

Per stage: status (`running`, `complete`, `failed`, `interrupted`, `stale`), the hash of the config that produced it,
start/end time and duration, record counts (kept, and skipped by reason), stage facts (token usage, metrics, ...).
At the top: the recipe, the domain and its provider, and library versions. Every save is atomic.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata as importlib_metadata
import json
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llava_adapt.errors import InputError
from llava_adapt.run.atomic import write_json
from llava_adapt.scrub import scrub

LIBRARIES = (
    "llava-adapt", "torch", "transformers", "peft", "trl", "accelerate", "datasets", "huggingface_hub",
    "openai", "pydicom", "pillow", "scikit-learn",
)  # fmt: skip

RUNNING, COMPLETE, FAILED, INTERRUPTED, STALE = "running", "complete", "failed", "interrupted", "stale"


class ManifestError(InputError, ValueError):
    """`manifest.json` exists but cannot be read as a manifest (the message names it and what to do)."""


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape a run's results (without importing them)."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class Manifest:
    """The manifest of one run directory; call the `start_`/`end_` methods, they save immediately."""

    def __init__(self, path: Path, data: dict[str, Any] | None = None) -> None:
        self.path = path
        self.data: dict[str, Any] = data if data is not None else {"stages": {}}
        self.data.setdefault("stages", {})

    @classmethod
    def load(cls, path: Path) -> Manifest:
        """Read `path`, or start an empty manifest if it does not exist.

        Raises:
            ManifestError: the file exists but is not a valid manifest (names the file and what to do).
        """
        if not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8 text"
            raise ManifestError(
                f"{path} is not valid JSON ({reason}); move it aside to start the run afresh (completed stages "
                "will run again)"
            ) from None
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("stages"), dict)
            or not all(isinstance(entry, dict) for entry in data["stages"].values())
        ):
            raise ManifestError(
                f"{path} is not a llava-adapt manifest (no 'stages' mapping of stage entries); move it aside to start "
                "the run afresh"
            )
        return cls(path, data)

    def save(self) -> None:
        write_json(self.path, self.data)

    def stage(self, name: str) -> dict[str, Any] | None:
        """The entry of stage `name`, or `None` if it never ran."""
        return self.data["stages"].get(name)

    def set_run_info(self, **info: Any) -> None:
        """Record run-level facts (recipe, preset, domain, provider) and the library versions."""
        self.data.update(info)
        self.data["versions"] = library_versions()
        self.data.setdefault("created", _now())
        self.save()

    def start_stage(self, name: str, config_hash: str, resume: bool) -> None:
        previous = self.stage(name) or {}
        self.data["stages"][name] = {
            "status": RUNNING,
            "config_hash": config_hash,
            "started": _now(),
            "attempts": previous.get("attempts", 0) + 1 if resume else 1,
            "resumed": resume,
        }
        self.save()

    def end_stage(
        self,
        name: str,
        status: str,
        seconds: float,
        kept: int = 0,
        skipped: Mapping[str, int] | None = None,
        info: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        entry = self.data["stages"].setdefault(name, {})
        entry.update(status=status, ended=_now(), seconds=round(seconds, 3))
        entry["counts"] = {"kept": kept, "skipped": dict(sorted((skipped or {}).items()))}
        if info:
            entry["info"] = dict(info)
        if error:
            entry["error"] = scrub(error)  # a server may have echoed the API key into the message
        self.save()

    def adopt_hash(self, name: str, config_hash: str) -> None:
        """Record `config_hash` as the hash of completed stage `name` (one hashed by an older llava-adapt)."""
        self.data["stages"][name]["config_hash"] = config_hash
        self.save()

    def mark_stale(self, names: list[str]) -> None:
        """Mark stages whose inputs are about to change, so a crash in between never leaves them 'complete'."""
        changed = False
        for name in names:
            entry = self.stage(name)
            if entry is not None and entry.get("status") != STALE:
                entry["status"] = STALE
                changed = True
        if changed:
            self.save()
