"""The DDP path on this machine: 2 CPU processes (gloo) through `accelerate launch`, as on GPUs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llava_adapt.stages import align
from tests.train.stage_helpers import context, make_recipe, prepare_data

pytestmark = [pytest.mark.slow, pytest.mark.multiprocess]

REPO = Path(__file__).resolve().parents[2]


def test_instruct_trains_with_two_cpu_processes(tmp_path: Path) -> None:
    recipe = make_recipe(tmp_path)
    prepare_data(recipe)
    align.run(context(recipe, "align"))
    launcher = [sys.executable, "-m", "accelerate.commands.launch"]
    config = REPO / "llava_adapt" / "train" / "accelerate_configs" / "ddp_cpu.yaml"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "LLAVA_ADAPT_PROGRESS": "0"}
    subprocess.run(
        [*launcher, "--config_file", str(config), str(REPO / "tests" / "train" / "ddp_worker.py"), str(tmp_path)],
        check=True, env=env, cwd=REPO, timeout=300,
    )  # fmt: skip
    reports = [json.loads((tmp_path / f"rank{i}.json").read_text()) for i in (0, 1)]
    assert [(r["rank"], r["world"], r["backend"]) for r in reports] == [(0, 2, "gloo"), (1, 2, "gloo")]
    assert reports[0]["global_step"] == reports[1]["global_step"] == 4
    assert (tmp_path / "instruct" / "adapter_model.safetensors").is_file()
