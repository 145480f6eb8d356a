"""The run directory: manifest, skip/rerun/resume rules, --force, locking, atomic writes, interrupted stages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from llava_adapt.recipe.loader import load_recipe
from llava_adapt.run.atomic import atomic_path, write_text
from llava_adapt.run.manifest import Manifest
from llava_adapt.run.pipeline import PipelineError, run_lock, run_pipeline
from tests.plugins import write_toy_recipe

pytestmark = pytest.mark.slow


@pytest.fixture
def toy(tmp_path: Path, plugin_site):
    plugin_site("toy-plugin", {"toy": "toy_plugin:domain"}, {"toy_plugin": "TOY:toy"})
    return write_toy_recipe(tmp_path)


class Recorder:
    """Fake stage functions that record their calls and write a file into their stage folder."""

    def __init__(self, fail: dict[str, BaseException] | None = None) -> None:
        self.calls: list[tuple[str, bool]] = []
        self.fail = fail or {}

    def __call__(self, name: str):
        def run(ctx):
            self.calls.append((name, ctx.resume))
            ctx.keep(3)
            ctx.skip("too long", 2)
            ctx.record("note", name)
            if name in self.fail:
                raise self.fail[name]
            write_text(ctx.layout.root / name / "out.txt", name)

        return run


def run(toy: Path, recorder: Recorder, overrides=(), force=None):
    loaded = load_recipe(str(toy), overrides=list(overrides))
    return run_pipeline(loaded, loaded.domain(), force=force, stage_fn=recorder)


ROOT = Path(__file__).resolve().parents[2]
ALL = ["prepare", "generate", "align", "instruct", "evaluate"]


def test_first_run_runs_everything_and_records_the_manifest(toy: Path):
    rec = Recorder()
    manifest = run(toy, rec)
    assert [c[0] for c in rec.calls] == ALL
    data = json.loads(manifest.path.read_text())
    stage = data["stages"]["align"]
    assert stage["status"] == "complete" and len(stage["config_hash"]) == 16
    assert stage["counts"] == {"kept": 3, "skipped": {"too long": 2}}
    assert stage["info"] == {"note": "align"} and stage["seconds"] >= 0
    assert data["versions"]["torch"] and data["versions"]["transformers"] and data["domain"] == "toy"
    assert (manifest.path.parent / "recipe.yaml").read_text().startswith("domain: toy")


def test_second_run_skips_everything(toy: Path):
    run(toy, Recorder())
    rec = Recorder()
    run(toy, rec)
    assert rec.calls == []


def test_changing_one_stage_reruns_it_and_everything_after(toy: Path):
    run(toy, Recorder())
    rec = Recorder()
    run(toy, rec, overrides=["instruct.learning_rate=1e-5"])
    assert [c[0] for c in rec.calls] == ["instruct", "evaluate"]
    rec = Recorder()
    run(toy, rec, overrides=["instruct.learning_rate=1e-5"])
    assert rec.calls == []


def test_a_changed_upstream_stage_invalidates_later_ones_even_across_runs(toy: Path):
    run(toy, Recorder())
    # run only the first stages with a new align config, then the full recipe with that config
    rec = Recorder()
    run(toy, rec, overrides=["align.learning_rate=0.5", "stages=[prepare,generate,align]"])
    assert [c[0] for c in rec.calls] == ["align"]
    rec = Recorder()
    run(toy, rec, overrides=["align.learning_rate=0.5"])
    assert [c[0] for c in rec.calls] == ["instruct", "evaluate"]


def test_force_reruns_from_a_stage(toy: Path):
    run(toy, Recorder())
    rec = Recorder()
    run(toy, rec, force="align")
    assert [c[0] for c in rec.calls] == ["align", "instruct", "evaluate"]
    with pytest.raises(PipelineError, match="Did you mean 'align'"):
        run(toy, Recorder(), force="alignn")


def test_an_interrupted_stage_is_resumed_and_later_stages_rerun(toy: Path):
    run(toy, Recorder())
    with pytest.raises(KeyboardInterrupt):
        run(toy, Recorder(fail={"instruct": KeyboardInterrupt()}), force="align")
    manifest = Manifest.load(toy.parent / "run" / "manifest.json")
    assert manifest.stage("align")["status"] == "complete"
    assert manifest.stage("instruct")["status"] == "interrupted"
    assert manifest.stage("evaluate")["status"] == "stale"  # never mistaken for complete
    rec = Recorder()
    run(toy, rec)
    assert rec.calls == [("instruct", True), ("evaluate", False)]


def test_a_failed_stage_records_the_error(toy: Path):
    with pytest.raises(RuntimeError):
        run(toy, Recorder(fail={"generate": RuntimeError("teacher unreachable")}))
    entry = Manifest.load(toy.parent / "run" / "manifest.json").stage("generate")
    assert entry["status"] == "failed" and entry["error"] == "RuntimeError: teacher unreachable"


def test_a_stage_killed_with_sigkill_is_resumed(toy: Path, tmp_path: Path):
    """A real process killed mid-stage leaves the stage `running`; the next run resumes it."""
    script = tmp_path / "killme.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os, signal, sys
            sys.path.insert(0, {str(tmp_path / "site")!r})
            from llava_adapt.recipe.loader import load_recipe
            from llava_adapt.run.pipeline import run_pipeline

            def stage_fn(name):
                def run(ctx):
                    if name == "align":
                        (ctx.layout.root / "align").mkdir(parents=True, exist_ok=True)
                        (ctx.layout.root / "align" / "checkpoint-1").write_text("partial")
                        os.kill(os.getpid(), signal.SIGKILL)
                return run

            loaded = load_recipe({str(toy)!r})
            run_pipeline(loaded, loaded.domain(), stage_fn=stage_fn)
            """
        )
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    run_dir = toy.parent / "run"
    assert Manifest.load(run_dir / "manifest.json").stage("align")["status"] == "running"
    rec = Recorder()
    run(toy, rec)
    assert rec.calls == [("align", True), ("instruct", False), ("evaluate", False)]
    assert (run_dir / "align" / "checkpoint-1").read_text() == "partial"  # resume keeps what the stage wrote


def test_a_rerun_from_scratch_removes_the_stage_outputs(toy: Path):
    run(toy, Recorder())
    stale = toy.parent / "run" / "instruct" / "old-checkpoint"
    stale.mkdir()
    run(toy, Recorder(), force="instruct")
    assert not stale.exists()


def test_a_second_concurrent_run_is_refused(toy: Path, tmp_path: Path):
    with run_lock(tmp_path / "run"), pytest.raises(PipelineError, match="another llava-adapt run"):
        run(toy, Recorder())


def test_atomic_path_never_leaves_a_partial_file(tmp_path: Path):
    target = tmp_path / "out.jsonl"
    target.write_text("old complete content")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old complete content"
    assert os.listdir(tmp_path) == ["out.jsonl"]
    folder = tmp_path / "model"
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        (tmp / "weights").write_text("w1")
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        (tmp / "weights").write_text("w2")
    assert (folder / "weights").read_text() == "w2" and sorted(os.listdir(tmp_path)) == ["model", "out.jsonl"]


def test_a_corrupt_manifest_is_a_clear_error(tmp_path: Path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="manifest.json is not valid JSON"):
        Manifest.load(tmp_path / "manifest.json")


def test_under_accelerate_launch_only_training_stages_run_on_every_process(toy: Path, tmp_path: Path):
    config = ROOT / "llava_adapt" / "train" / "accelerate_configs" / "ddp_cpu.yaml"
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config)]
    worker = [str(ROOT / "tests" / "run" / "dist_worker.py"), str(tmp_path / "site"), str(toy), str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    subprocess.run([*launcher, *worker], check=True, env=env, cwd=ROOT, timeout=300)
    ranks = [json.loads((tmp_path / f"rank{i}.json").read_text()) for i in (0, 1)]
    assert ranks == [ALL, ["align", "instruct"]]
    manifest = Manifest.load(toy.parent / "run" / "manifest.json")
    assert all(manifest.stage(s)["status"] == "complete" for s in ALL)


def test_the_lock_names_the_holding_process_and_dies_with_it(tmp_path: Path):
    run_dir = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(PipelineError, match=rf"another llava-adapt run \(pid {holder.pid}\)"), run_lock(run_dir):
            pass
    finally:
        holder.kill()
        holder.wait()
    with run_lock(run_dir):  # a killed holder leaves no stale lock
        assert (run_dir / ".lock.pid").read_text() == str(os.getpid())


HOLD_LOCK = """
import sys, time
from pathlib import Path
from llava_adapt.run.pipeline import run_lock
with run_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(60)
"""
