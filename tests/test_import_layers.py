"""Layers point one way: the import-linter contracts in pyproject.toml hold, and they catch an upward import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
pytestmark = pytest.mark.skipif(LINT_IMPORTS is None, reason="import-linter is not installed (pip install -e .[dev])")


def lint(root: Path) -> subprocess.CompletedProcess:
    """`lint-imports` with the contracts of `root/pyproject.toml`, over the package in `root`."""
    env = {"PYTHONPATH": str(root), "PATH": str(Path(sys.executable).parent)}
    return subprocess.run([LINT_IMPORTS, "--no-cache", "--no-logo"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def test_the_package_keeps_its_import_contracts():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "statement"),
    [
        ("llava_adapt/hub/upward.py", "from llava_adapt.stages.context import StageContext\n"),
        ("llava_adapt/train/upward.py", "def f():\n    import llava_adapt.run.pipeline\n"),  # inside a function too
        ("llava_adapt/upward_domain.py", "import llava_adapt.generate.prompts\n"),  # reached from domain below
    ],
)
@pytest.mark.slow
def test_an_upward_import_breaks_a_contract(tmp_path: Path, module: str, statement: str):
    shutil.copytree(ROOT / "llava_adapt", tmp_path / "llava_adapt", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    (tmp_path / module).write_text(statement)
    if module == "llava_adapt/upward_domain.py":
        domain = tmp_path / "llava_adapt" / "domain.py"
        domain.write_text(domain.read_text() + "\n\ndef _late():\n    import llava_adapt.upward_domain\n")
    result = lint(tmp_path)
    assert result.returncode != 0 and "BROKEN" in result.stdout, result.stdout + result.stderr
