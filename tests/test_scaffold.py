"""`llava-adapt domain new`: the scaffolded plugin package installs with pip, registers, and passes its own test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llava_adapt.cli import app


@pytest.mark.slow
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


@pytest.mark.slow
def test_scaffolded_plugin_runs_its_shipped_recipe_tiny_preset_end_to_end(tmp_path: Path):
    assert CliRunner().invoke(app, ["domain", "new", "pathology", "--dir", str(tmp_path)]).exit_code == 0
    site = tmp_path / "site"  # installed from its folder, offline, into an isolated place
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run([*pip, "--target", str(site), str(tmp_path / "llava-adapt-pathology")], check=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("LLAVA_ADAPT_DEBUG", None)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "llava_adapt", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=900)  # fmt: skip

    listing = cli("recipe", "ls", "--json")
    assert listing.returncode == 0, listing.stderr
    rows = {r["name"]: r for r in json.loads(listing.stdout)}
    assert rows["pathology"]["provider"] == "llava-adapt-pathology 0.1.0"
    assert rows["pathology"]["domain"] == "pathology" and rows["pathology"]["presets"] == ["tiny"]

    run_dir = tmp_path / "run"
    result = cli("recipe", "run", "pathology", "--preset", "tiny", "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert [name for name, entry in manifest["stages"].items() if entry["status"] == "complete"] == [
        "prepare", "generate", "align", "instruct", "evaluate"]  # fmt: skip
    assert (run_dir / "instruct" / "adapter_model.safetensors").is_file()
    metrics = json.loads((run_dir / "eval" / "synthetic_colour" / "metrics.json").read_text())
    assert metrics["domain"] == "pathology" and metrics["num_items"] == 24
    assert metrics["primary_metric"] == "accuracy" and 0.0 <= metrics["metrics"]["accuracy"] <= 1.0
    assert metrics["metrics"]["num_closed"] == 24 and "accuracy" in metrics["baseline"]
