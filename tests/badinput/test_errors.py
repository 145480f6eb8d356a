"""Errors a user can act on are one line with the documented exit code — from the core, a plugin, the file system —
and a failed stage is recorded in the manifest whenever the disk allows it (and the message says when it did not)."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llava_adapt.cli import app
from llava_adapt.errors import EXIT_FILE_SYSTEM, EXIT_INPUT, FileSystemError, InputError, LlavaAdaptError, user_error
from tests.badinput.faults import run_cli
from tests.plugins import write_toy_recipe

pytestmark = pytest.mark.slow

runner = CliRunner()

# A plugin whose source fails with the core's user-facing error, and one with a bug.
PLUGINS = """
import dataclasses
from llava_adapt.domain import Source
from llava_adapt.errors import LlavaAdaptError
from toy_plugin import ToyArgs, domain as toy


def refuses(args, ctx):
    raise LlavaAdaptError("the archive is password-protected: unpack it into data.root first")
    yield


def crashes(args, ctx):
    yield 1 / 0


refusing = dataclasses.replace(toy, name="refusing", sources={"toy": Source("refuses", refuses, ToyArgs)})
crashing = dataclasses.replace(toy, name="crashing", sources={"toy": Source("crashes", crashes, ToyArgs)})
"""


@pytest.fixture
def toy(tmp_path: Path, plugin_site) -> Path:
    plugin_site(
        "toy-plugin",
        {"toy": "toy_plugin:domain", "refusing": "bad_plugin:refusing", "crashing": "bad_plugin:crashing"},
        {"toy_plugin": "TOY:toy", "bad_plugin": PLUGINS},
    )
    return write_toy_recipe(tmp_path)


def _lines(text: str) -> list[str]:
    """The lines from the first `error:` on (progress and log lines come before it)."""
    lines = [line for line in text.splitlines() if line.strip()]
    first = next((i for i, line in enumerate(lines) if line.startswith("error:")), len(lines))
    return lines[first:]


def test_a_plugin_raising_the_core_error_gets_one_line_and_the_manifest_records_it(toy: Path, tmp_path: Path):
    run_dir = tmp_path / "run"
    result = runner.invoke(app, ["recipe", "run", str(toy), "--run-dir", str(run_dir), "domain=refusing"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    errors = _lines(result.output)
    assert errors[0] == "error: the archive is password-protected: unpack it into data.root first"
    assert errors[1].startswith("stage 'prepare' is recorded as failed in ") and len(errors) == 2
    entry = json.loads((run_dir / "manifest.json").read_text())["stages"]["prepare"]
    assert entry["status"] == "failed" and "password-protected" in entry["error"]


def test_a_bug_keeps_its_traceback_and_debug_shows_one_for_user_errors(toy: Path, tmp_path: Path, monkeypatch):
    crashed = runner.invoke(app, ["recipe", "run", str(toy), "--run-dir", str(tmp_path / "a"), "domain=crashing"])
    assert isinstance(crashed.exception, ZeroDivisionError)  # not swallowed into a one-line "error:"
    monkeypatch.setenv("LLAVA_ADAPT_DEBUG", "1")
    debug = runner.invoke(app, ["recipe", "run", str(toy), "--run-dir", str(tmp_path / "b"), "domain=refusing"])
    assert isinstance(debug.exception, LlavaAdaptError)


@pytest.mark.parametrize(
    "content",
    [
        b'{"stages": {"prepare": {"status": "comp',
        b'["not", "a", "manifest"]',
        b'{"stages": {"prepare": 3}}',
        b"\xff\xfe",
    ],
    ids=["torn", "a list", "entry not an object", "not utf-8"],
)
def test_a_corrupt_manifest_is_one_line_naming_it(toy: Path, tmp_path: Path, content: bytes):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "manifest.json").write_bytes(content)
    result = runner.invoke(app, ["recipe", "run", str(toy), "--run-dir", str(run_dir)])
    assert result.exit_code == EXIT_INPUT
    lines = _lines(result.output)
    assert len(lines) == 1 and lines[0].startswith(f"error: {run_dir / 'manifest.json'} is not")
    assert "move it aside" in lines[0]
    assert (run_dir / "manifest.json").read_bytes() == content  # left as it was


def test_file_system_errors_name_the_file_and_what_to_do():
    full = user_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/runs/x/data/instruct.jsonl"))
    assert isinstance(full, FileSystemError) and full.exit_code == EXIT_FILE_SYSTEM
    assert str(full) == (
        "/runs/x/data/instruct.jsonl: No space left on device (free some space, or use a run directory on another "
        "disk)"
    )
    missing = user_error(FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), "/data/caps.jsonl"))
    assert isinstance(missing, InputError) and str(missing) == "/data/caps.jsonl: No such file or directory"
    assert user_error(ValueError("a bug")) is None and user_error(OSError(errno.EIO, "I/O error")) is None


def test_a_full_disk_during_generate_is_one_line_and_recorded_as_failed(toy: Path, tmp_path: Path):
    """A write past the size limit fails as on a full disk (EFBIG here, ENOSPC there), in the middle of generate."""
    run_dir, site = tmp_path / "run", [tmp_path / "site"]
    args = ["recipe", "run", str(toy), "--run-dir", str(run_dir), "data.args.count=40",
            "generate.samples_per_record=4", "stages=[prepare,generate]"]  # fmt: skip
    result = run_cli(args, fsize=12_000, pythonpath=site)  # captions (4 KB) fit, conversations (28 KB) do not
    assert result.returncode == EXIT_FILE_SYSTEM, result.stderr
    assert "Traceback" not in result.stderr
    lines = _lines(result.stderr)
    assert lines[0].startswith(f"error: {run_dir / 'data' / 'instruct.jsonl'}: File too large (the file grew past")
    assert lines[1].startswith("stage 'generate' is recorded as failed in") and len(lines) == 2
    entry = json.loads((run_dir / "manifest.json").read_text())["stages"]["generate"]
    assert entry["status"] == "failed" and "File too large" in entry["error"]
    again = run_cli(args, pythonpath=site)  # space again: the same command resumes and completes
    assert again.returncode == 0, again.stderr
    rows = [json.loads(line) for line in (run_dir / "data" / "instruct.jsonl").read_text().splitlines()]
    assert len(rows) == len({row["id"] for row in rows}) == 160


def test_when_the_manifest_cannot_record_the_failure_the_message_says_so(toy: Path, tmp_path: Path):
    run_dir, site = tmp_path / "run", [tmp_path / "site"]
    args = ["recipe", "run", str(toy), "--run-dir", str(run_dir), "data.args.count=40"]
    assert run_cli([*args, "stages=[prepare]"], pythonpath=site).returncode == 0
    # Room for the manifest with generate marked running (+ ~190 bytes), not for its failure (+ ~420) or the output.
    limit = (run_dir / "manifest.json").stat().st_size + 300
    result = run_cli([*args, "stages=[prepare,generate]", "generate.samples_per_record=4"], fsize=limit,
                     pythonpath=site)  # fmt: skip
    assert result.returncode == EXIT_FILE_SYSTEM, result.stderr
    assert "Traceback" not in result.stderr
    lines = _lines(result.stderr)
    assert lines[0].startswith(f"error: {run_dir / 'data' / 'instruct.jsonl'}: File too large")
    assert lines[1].startswith(f"{run_dir / 'manifest.json'} could not record this failure (File too large)")
    assert "it still says stage 'generate' is running; the next run resumes it" in lines[1]
    assert json.loads((run_dir / "manifest.json").read_text())["stages"]["generate"]["status"] == "running"


def test_a_read_only_run_directory_is_one_line(toy: Path, tmp_path: Path):
    run_dir, site = tmp_path / "run", [tmp_path / "site"]
    args = ["recipe", "run", str(toy), "--run-dir", str(run_dir), "stages=[prepare]"]
    assert run_cli(args, pythonpath=site).returncode == 0
    for path in [run_dir, *run_dir.rglob("*")]:
        path.chmod(stat.S_IMODE(path.stat().st_mode) & ~0o222)
    try:
        result = run_cli([*args, "--force", "prepare"], read_only=True, pythonpath=site)
    finally:
        for path in [run_dir, *run_dir.rglob("*")]:
            path.chmod(stat.S_IMODE(path.stat().st_mode) | 0o200)
    assert result.returncode == EXIT_FILE_SYSTEM, result.stderr
    lines = _lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith(f"error: {run_dir}")
    assert "Permission denied (give yourself access to it, or choose another path)" in lines[0]
