"""What runs leave behind: a run killed with SIGKILL leaves temporaries and a lock the next run cleans up; a finished
run leaves no lock files; everything written — weights included — has the permissions of any other file."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from llava_adapt.cli import app
from llava_adapt.run.atomic import UMASK, atomic_path
from tests.badinput.faults import run_cli
from tests.plugins import write_toy_recipe

pytestmark = pytest.mark.slow

runner = CliRunner()

# A source that writes three records and then dies with SIGKILL, while `prepare` is inside its atomic write.
DYING = """
import dataclasses, os, signal
from PIL import Image
from llava_adapt.data.records import CaptionRecord
from llava_adapt.domain import Source
from toy_plugin import ToyArgs, domain as toy


def dies(args, ctx):
    for i in range(5):
        if i == 3 and os.environ.get("DIE"):
            os.kill(os.getpid(), signal.SIGKILL)
        Image.new("RGB", (8, 8), "red").save(ctx.output_dir / f"{i}.png")
        yield CaptionRecord(id=str(i), image=f"{i}.png", caption="a red square", labels={"colour": "red"})


dying = dataclasses.replace(toy, name="dying", sources={"toy": Source("dies", dies, ToyArgs)})
"""


@pytest.fixture
def toy(tmp_path: Path, plugin_site) -> Path:
    plugin_site(
        "toy-plugin",
        {"toy": "toy_plugin:domain", "dying": "dying_plugin:dying"},
        {"toy_plugin": "TOY:toy", "dying_plugin": DYING},
    )
    return write_toy_recipe(tmp_path)


def _debris(run_dir: Path) -> list[str]:
    return sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.name.endswith((".tmp", ".old")))


def test_a_finished_run_leaves_no_lock_files(toy: Path, tmp_path: Path):
    run_dir = tmp_path / "run"
    assert (
        runner.invoke(app, ["recipe", "run", str(toy), "--run-dir", str(run_dir), "stages=[prepare]"]).exit_code == 0
    )
    assert not (run_dir / ".lock").exists() and not (run_dir / ".lock.pid").exists()
    assert _debris(run_dir) == []


def test_the_run_after_a_sigkill_removes_what_the_killed_run_left(toy: Path, tmp_path: Path):
    run_dir, site = tmp_path / "run", [tmp_path / "site"]
    args = ["recipe", "run", str(toy), "--run-dir", str(run_dir), "domain=dying", "stages=[prepare]"]
    killed = run_cli(args, pythonpath=site, env={"DIE": "1"})
    assert killed.returncode == -signal.SIGKILL
    assert _debris(run_dir) == [
        f"data/.captions.jsonl.{pid}.{name[-12:-4]}.tmp" for pid, name in _temporaries(run_dir)
    ]
    assert len(_debris(run_dir)) == 1 and (run_dir / ".lock.pid").exists()  # the dead run's pid
    again = run_cli(args, pythonpath=site)
    assert again.returncode == 0, again.stderr
    assert "removed 1 temporary files a killed run left" in again.stderr
    assert _debris(run_dir) == [] and not (run_dir / ".lock").exists() and not (run_dir / ".lock.pid").exists()
    assert json.loads((run_dir / "manifest.json").read_text())["stages"]["prepare"]["counts"]["kept"] == 5


def _temporaries(run_dir: Path) -> list[tuple[str, str]]:
    return [(p.name.split(".")[3], p.name) for p in (run_dir / "data").glob(".captions.jsonl.*.tmp")]


def test_data_generate_removes_a_dead_writers_temporary_and_keeps_a_live_ones(toy: Path, tmp_path: Path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    left = tmp_path / f".o.rejects.jsonl.{dead_pid}.abcd1234.tmp"
    live = tmp_path / f".o.rejects.jsonl.{os.getpid()}.efgh5678.tmp"
    for folder in (left, live):
        folder.mkdir()
        (folder / "x").write_text("half a rewrite")
    caps = tmp_path / "caps.jsonl"
    caps.write_text(json.dumps({"id": "a", "image": "a.png", "caption": "red", "labels": {"colour": "red"}}) + "\n")
    args = ["data", "generate", "--domain", "toy", "--captions", str(caps), "--out", str(tmp_path / "o.jsonl")]
    assert runner.invoke(app, [*args, "--offline", "--no-progress"]).exit_code == 0
    assert not left.exists() and live.exists()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_weights_written_atomically_are_readable_like_every_other_file(tmp_path: Path):
    save_file({"w": torch.zeros(2)}, tmp_path / "plain.safetensors")
    assert _mode(tmp_path / "plain.safetensors") == 0o600  # what safetensors does on its own
    with atomic_path(tmp_path / "model") as tmp:
        tmp.mkdir()
        save_file({"w": torch.zeros(2)}, tmp / "model.safetensors")
        (tmp / "config.json").write_text("{}")
    assert _mode(tmp_path / "model") == 0o777 & ~UMASK  # not the 0700 of a temporary folder
    assert _mode(tmp_path / "model" / "model.safetensors") == _mode(tmp_path / "model" / "config.json")
    assert _mode(tmp_path / "model" / "config.json") == 0o666 & ~UMASK


def test_a_stage_that_writes_private_files_ends_with_shared_ones(toy: Path, tmp_path: Path):
    from llava_adapt.recipe.loader import load_recipe
    from llava_adapt.run.pipeline import run_pipeline

    def stage_fn(name):
        def run(ctx):
            if name == "align":  # a trainer checkpoint, written straight into the stage folder
                (ctx.layout.align_dir / "checkpoint-1").mkdir(parents=True)
                save_file({"w": torch.zeros(2)}, ctx.layout.align_dir / "checkpoint-1" / "model.safetensors")

        return run

    loaded = load_recipe(str(toy), run_dir=str(tmp_path / "run"))
    run_pipeline(loaded, loaded.domain(), stage_fn=stage_fn)
    weights = tmp_path / "run" / "align" / "checkpoint-1" / "model.safetensors"
    assert _mode(weights) == 0o666 & ~UMASK


def test_a_folder_swap_cut_by_a_kill_is_undone(tmp_path: Path):
    """Killed between moving the old folder aside and moving the new one in: the old one is put back."""
    from llava_adapt.run.atomic import remove_debris

    (tmp_path / ".align.old").mkdir()
    (tmp_path / ".align.old" / "model.safetensors").write_text("old weights")
    (tmp_path / ".instruct.old").mkdir()  # a swap that did finish: the new folder is there
    (tmp_path / "instruct").mkdir()
    assert remove_debris(tmp_path) == 2
    assert (tmp_path / "align" / "model.safetensors").read_text() == "old weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["align", "instruct"]
