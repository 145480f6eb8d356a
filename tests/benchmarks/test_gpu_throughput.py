"""`benchmarks/gpu_throughput.py` starts on a machine without CUDA: a one-line refusal, and its `--dry-run` runs the
whole measuring path (model from configs, llava-adapt's stages, the figures) at toy size on the CPU."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_throughput.py"
ENV = {**os.environ, "LLAVA_ADAPT_PROGRESS": "0", "TQDM_DISABLE": "1"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_without_cuda_it_refuses_in_one_line() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "gpu_throughput.py needs a CUDA GPU and torch.cuda.is_available() is False here; run it on a GPU machine, "
        "or add --dry-run for the toy-size check on this CPU"
    ]


@pytest.mark.integration
def test_dry_run_measures_every_figure_on_the_cpu(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    subprocess.run(
        [sys.executable, str(SCRIPT), "--dry-run", "--configs", "align_on,instruct_lora_off", "--json", str(out)],
        check=True, env=ENV, timeout=600, capture_output=True,
    )  # fmt: skip
    results = json.loads(out.read_text())
    assert results["dry_run"] and results["device"] == "cpu" and results["steps"] == 3
    figures = results["configs"]
    assert set(figures) == {"align_on", "instruct_lora_off"}
    for fig in figures.values():
        assert fig["steps"] == 3 and len(fig["loss_curve"]) == 3 and math.isfinite(fig["final_loss"])
        assert (
            fig["samples_per_s"] > 0 and fig["tokens_per_s"] > fig["samples_per_s"] and fig["model_tflops_per_s"] > 0
        )
    assert figures["align_on"]["vision_feature_cache"].endswith(tuple("0123456789abcdef"))  # a cache folder
    assert figures["instruct_lora_off"]["vision_feature_cache"] is None
    assert figures["instruct_lora_off"]["attn_implementation"] == "sdpa"
    assert figures["align_on"]["trainable_parameters"] < figures["instruct_lora_off"]["trainable_parameters"]
