"""Running a built-in recipe's `tiny` preset through the installed `llava-adapt` command, offline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_tiny_preset(recipe: str, run_dir: Path) -> None:
    """`llava-adapt recipe run RECIPE --preset tiny --run-dir RUN_DIR` offline, without progress bars; raises
    `subprocess.CalledProcessError` if it fails (a 2,100 s hang guard, not a timing check)."""
    cli = str(Path(sys.executable).with_name("llava-adapt"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LLAVA_ADAPT_PROGRESS": "0"}
    command = [cli, "recipe", "run", recipe, "--preset", "tiny", "--run-dir", str(run_dir)]
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=2100)
