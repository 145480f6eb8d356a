"""FSDP on this machine: 2 CPU processes through the shipped `fsdp.yaml` (FSDP2, full state dict), `instruct` with
LoRA. The first run is launched as the README's multi-node command (two "machines" of one process each, meeting at
127.0.0.1), the resumed one as a single machine with two processes. Checkpoints are written once, by rank 0, and a
run killed after a checkpoint resumes from it to the same weights. accelerate enables FSDP only on accelerator
devices, so the worker lifts that one check (`fsdp_worker.allow_fsdp_on_cpu`); mixed precision is off (the CPU trains
in fp32)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from llava_adapt.stages import align
from tests.train.stage_helpers import context, make_recipe, prepare_data

pytestmark = [pytest.mark.integration, pytest.mark.multiprocess]

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "llava_adapt" / "train" / "accelerate_configs" / "fsdp.yaml"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _launch(run_dir: Path, *flags: str, machines: int = 1) -> list[dict]:
    """Launch the worker with 2 processes in all, on `machines` "machines" (each its own `accelerate launch`)."""
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIG),
                "--num_processes", "2", "--mixed_precision", "no"]  # fmt: skip
    if machines > 1:
        launcher += ["--num_machines", str(machines), "--main_process_ip", "127.0.0.1",
                     "--main_process_port", str(_free_port())]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "LLAVA_ADAPT_PROGRESS": "0"}
    worker = [str(REPO / "tests" / "train" / "fsdp_worker.py"), str(run_dir), *flags]
    ranks = [["--machine_rank", str(rank)] if machines > 1 else [] for rank in range(machines)]
    running = [subprocess.Popen([*launcher, *rank, *worker], env=env, cwd=REPO) for rank in ranks]
    assert [process.wait(timeout=300) for process in running] == [0] * machines
    return [json.loads((run_dir / f"rank{i}.json").read_text()) for i in (0, 1)]


def test_instruct_under_fsdp_saves_once_and_resumes(tmp_path: Path) -> None:
    recipe = make_recipe(tmp_path)
    prepare_data(recipe)
    align.run(context(recipe, "align"))
    reports = _launch(tmp_path, machines=2)
    assert [(r["rank"], r["world"], r["distributed"], r["fsdp_version"]) for r in reports] == [
        (0, 2, "FSDP", 2), (1, 2, "FSDP", 2)
    ]  # fmt: skip
    assert reports[0]["global_step"] == reports[1]["global_step"] == 4  # 12 samples, 2 per rank and step
    out = tmp_path / "instruct"
    uninterrupted = load_file(out / "adapter_model.safetensors")
    for step in (2, 4):  # one full copy of each state, written by rank 0 (no per-rank shards)
        names = {p.name for p in (out / "checkpoints" / f"checkpoint-{step}").iterdir()}
        assert {"adapter_model.safetensors", "pytorch_model_fsdp.bin", "optimizer.bin", "trainer_state.json"} <= names
        assert not [n for n in names if n.startswith(("pytorch_model_fsdp_", "optimizer_"))]

    # what a kill right after the step-2 checkpoint leaves behind
    shutil.rmtree(out / "checkpoints" / "checkpoint-4")
    for path in out.iterdir():
        if path.is_file():
            path.unlink()
    reports = _launch(tmp_path, "--resume")
    assert [(r["resumed_from"], r["global_step"]) for r in reports] == [("checkpoint-2", 4)] * 2
    resumed = load_file(out / "adapter_model.safetensors")
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.allclose(resumed[k], uninterrupted[k], atol=1e-6) for k in resumed)
