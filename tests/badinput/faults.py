"""Run the real `llava-adapt` command in a subprocess under a fault the operating system produces: a file-size limit
(a "full disk" for every file past a size) or a run directory it may not write — no patched function anywhere.

- `fsize`: `RLIMIT_FSIZE` in the child, with `SIGXFSZ` ignored, so a write past the limit fails with `EFBIG` as a
  write to a full disk fails with `ENOSPC` (files below the limit, such as the manifest, can still be written).
- `read_only`: the child cannot write where the permission bits forbid it; as root (which ignores them) the child
  drops `CAP_DAC_OVERRIDE`, `CAP_DAC_READ_SEARCH` and `CAP_FOWNER` from its bounding set before it starts.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER = 1, 2, 3


def _drop_file_capabilities() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def run_cli(
    args: Sequence[str],
    fsize: int | None = None,
    read_only: bool = False,
    pythonpath: Sequence[Path] = (),
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run `python -m llava_adapt ARGS` and return the finished process (text stdout and stderr).

    Args:
        args (`Sequence[str]`): the command line after `llava-adapt`.
        fsize (`int`, *optional*): the largest file, in bytes, the child may write.
        read_only (`bool`, defaults to `False`): make permission bits binding even for root (see module docstring).
        pythonpath (`Sequence[Path]`, defaults to `()`): folders put first on the child's `PYTHONPATH` (plugins).
        env (`dict[str, str]`, *optional*): more environment variables.
        timeout (`float`, defaults to `300`): seconds before the child is killed.
    """

    def limit() -> None:
        if fsize is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # kept across exec: writes fail with EFBIG instead
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        if read_only and os.geteuid() == 0:
            _drop_file_capabilities()

    paths = [str(p) for p in pythonpath] + [os.environ.get("PYTHONPATH", "")]
    child_env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p), "COLUMNS": "200", **(env or {})}
    child_env.pop("LLAVA_ADAPT_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "llava_adapt", *args],
        capture_output=True,
        text=True,
        env=child_env,
        preexec_fn=limit,
        timeout=timeout,
    )
