"""`llava-adapt domain new`: the scaffolded plugin package installs with pip, registers, and passes its own test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from llava_adapt.cli import app


def test_scaffolded_plugin_installs_registers_and_passes_its_test(tmp_path: Path):
    result = CliRunner().invoke(app, ["domain", "new", "pathology", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    package_dir = tmp_path / "llava-adapt-pathology"
    assert (package_dir / "pyproject.toml").is_file()
    assert (package_dir / "llava_adapt_pathology" / "prompts" / "conversation" / "system_message.txt").is_file()

    # a real, non-editable pip install into an isolated target folder
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip, "--target", str(site), str(package_dir)], check=True, timeout=300)
    assert (site / "llava_adapt_pathology" / "prompts" / "conversation" / "000_response.txt").is_file()
    env = {**os.environ, "PYTHONPATH": str(site)}

    listing = subprocess.run(
        [sys.executable, "-m", "llava_adapt", "domain", "ls", "--json"],
        env=env, capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    rows = {r["name"]: r for r in json.loads(listing.stdout)}
    assert rows["pathology"]["package"] == "llava-adapt-pathology"
    assert rows["pathology"]["status"] == "ok", rows["pathology"]["error"]

    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(package_dir / "tests")],
        env=env, cwd=package_dir, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "5 passed" in tests.stdout


def test_bad_names_and_existing_folders_are_refused(tmp_path: Path):
    runner = CliRunner()
    bad = runner.invoke(app, ["domain", "new", "Path-ology", "--dir", str(tmp_path)])
    assert bad.exit_code == 2 and "lower-case identifier" in bad.output
    assert runner.invoke(app, ["domain", "new", "x", "--dir", str(tmp_path)]).exit_code == 0
    again = runner.invoke(app, ["domain", "new", "x", "--dir", str(tmp_path)])
    assert again.exit_code == 2 and "already exists" in again.output
