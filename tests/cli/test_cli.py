"""The command line: every verb, its --help example, JSON listings, and error exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import llava_adapt.cli
from llava_adapt.cli import app
from tests.plugins import write_toy_recipe

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["domain"],
        ["domain", "ls"],
        ["domain", "new"],
        ["recipe"],
        ["recipe", "ls"],
        ["recipe", "cp"],
        ["recipe", "validate"],
        ["recipe", "plan"],
        ["recipe", "run"],
        ["data"],
        ["data", "generate"],
        ["eval"],
        ["chat"],
        ["convert"],
        ["report"],
        ["export"],
        ["publish"],
        ["demo"],
    ],
)
@pytest.mark.slow
def test_every_command_has_help_with_an_example(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert re.search(r"Examples?: llava-adapt", result.output)


def test_domain_ls_json_lists_the_toy_plugin_with_its_package(plugin_site):
    plugin_site("toy-plugin", {"toy": "toy_plugin:domain"}, {"toy_plugin": "TOY:toy"}, version="0.4")
    rows = {r["name"]: r for r in json.loads(invoke("domain", "ls", "--json").output)}
    assert rows["toy"]["package"] == "toy-plugin" and rows["toy"]["version"] == "0.4"
    assert rows["toy"]["status"] == "ok" and rows["toy"]["description"] == "A toy domain for tests."
    table = invoke("domain", "ls").output
    assert "toy-plugin" in table


def test_recipe_validate_ok_and_errors(tmp_path: Path, plugin_site):
    plugin_site("toy-plugin", {"toy": "toy_plugin:domain"}, {"toy_plugin": "TOY:toy"})
    recipe = str(write_toy_recipe(tmp_path))
    ok = invoke("recipe", "validate", recipe, "--preset", "tiny")
    assert ok.exit_code == 0 and "ok" in ok.output and "prepare -> generate" in ok.output
    bad = runner.invoke(app, ["recipe", "validate", recipe, "instruct.lerning_rate=1"])
    assert bad.exit_code == 2  # a bad recipe is bad input (llava_adapt.errors)
    assert "instruct.lerning_rate: unknown key. Did you mean 'learning_rate'?" in bad.output


def test_recipe_run_runs_the_toy_prepare_stage(tmp_path: Path, plugin_site):
    plugin_site("toy-plugin", {"toy": "toy_plugin:domain"}, {"toy_plugin": "TOY:toy"})
    recipe = str(write_toy_recipe(tmp_path))
    run_dir = tmp_path / "r"
    result = invoke("recipe", "run", recipe, "--run-dir", str(run_dir), "stages=[prepare]")
    assert result.exit_code == 0, result.output
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["stages"]["prepare"]["counts"] == {"kept": 2, "skipped": {"toy skip": 1}}
    again = invoke("recipe", "run", recipe, "--run-dir", str(run_dir), "stages=[prepare]")
    assert "prepare: skipped (complete, config unchanged)" in again.output


def test_recipe_ls_and_cp(tmp_path: Path):
    rows = json.loads(invoke("recipe", "ls", "--json").output)
    names = {r["name"] for r in rows}
    assert {"biomed", "general", "scienceqa"} <= names
    assert all("tiny" in r["presets"] for r in rows)
    assert all(r["description"] for r in rows)
    result = invoke("recipe", "cp", "general", str(tmp_path))
    assert result.exit_code == 0
    copied = tmp_path / "general.yaml"
    assert copied.read_text().startswith("#")
    again = runner.invoke(app, ["recipe", "cp", "general", str(copied)])
    assert again.exit_code == 2 and "--force" in again.output


def test_every_command_ends_on_a_user_error_through_the_one_handler() -> None:
    """No command prints its own `error:` line or picks its own exit code: `CommandGroup` does, with the error's
    code (`llava_adapt.errors`), so `convert`, `publish` and `eval` end a bad input the same way `recipe` does."""
    cli = Path(llava_adapt.cli.__file__).parent
    for module in sorted(cli.glob("*.py")):
        if module.name == "errors.py":
            continue
        text = module.read_text(encoding="utf-8")
        assert "def _fail" not in text, module.name
        assert not re.search(r"typer\.Exit\([1-9]", text), module.name
        assert "error:[/red]" not in text, module.name
    converted = runner.invoke(app, ["convert", "nowhere", "--out", str(Path(__file__).parent)])
    assert converted.exit_code == 2 and "not empty" in converted.output
    bad_dtype = runner.invoke(app, ["convert", "nowhere", "--out", "x", "--dtype", "fp7"])
    assert bad_dtype.exit_code == 2 and "--dtype" in bad_dtype.output
