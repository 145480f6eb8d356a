"""`llava-adapt publish` / `llava-adapt export` on the command line, and the `publish` pipeline stage."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import typer
import yaml
from huggingface_hub import ModelCard
from PIL import Image
from typer.testing import CliRunner

from llava_adapt.cli.errors import CommandGroup
from llava_adapt.cli.publish import register
from llava_adapt.recipe.schema import Recipe
from llava_adapt.run.layout import RunLayout
from llava_adapt.stages import load_stage
from llava_adapt.stages.context import StageContext
from tests.hub.conftest import TOKEN, write_manifest
from tests.hub.fake_hub import FakeHub

REPO = "someone/llava-med-tiny"
app = typer.Typer(cls=CommandGroup)  # the root app's error handling
register(app)
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_help_has_an_example() -> None:
    for command in ("publish", "export"):
        result = invoke(command, "--help")
        assert result.exit_code == 0 and "Example: llava-adapt" in result.output


@pytest.mark.slow
def test_publish_command(run_dir: Path, hub: FakeHub) -> None:
    args = ["publish", str(run_dir), "--repo-id", REPO, "--private", "--card-dataset", "someone/pmc-captions"]
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    assert "Published the model: 10 files" in first.output
    assert ModelCard(hub.files(REPO)["README.md"].decode()).data.datasets == ["someone/pmc-captions"]
    second = invoke(*args)
    assert second.exit_code == 0 and "Unchanged" in second.output
    assert TOKEN not in first.output + second.output


def test_publish_command_errors_exit_1(run_dir: Path, hub: FakeHub) -> None:
    write_manifest(run_dir, {"prepare": "complete"})
    result = invoke("publish", str(run_dir), "--repo-id", REPO)
    assert result.exit_code == 1
    assert "instruct stage" in result.output and "never ran" in result.output
    result = invoke("publish", str(run_dir), "--repo-id", "not/a/repo")
    assert result.exit_code == 2 and "OWNER/NAME" in result.output


def test_export_adapter_bundle(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    result = invoke(
        "export", str(run_dir), "--out", str(out), "--repo-id", REPO, "--card-dataset", "someone/pmc-captions"
    )
    assert result.exit_code == 0, result.output
    assert (out / "adapter_model.safetensors").is_file() and (out / "eval/vqa_rad/metrics.json").is_file()
    assert ModelCard.load(out / "README.md").data.pipeline_tag == "image-text-to-text"


def test_export_merged(run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "merged"
    result = invoke("export", str(run_dir), "--out", str(out), "--merged", "--card-dataset", "someone/pmc-captions")
    assert result.exit_code == 0, result.output
    assert (out / "model.safetensors").is_file() and not (out / "adapter_config.json").exists()
    card = ModelCard.load(out / "README.md")
    assert card.data.library_name == "transformers"
    assert f"OWNER/{run_dir.name}" in card.text  # no --repo-id: a placeholder the reader replaces
    # The card's code runs on the folder with stock transformers.
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (50, 60), "blue").save("example.png")
    code = card.text.split("```python\n", 1)[1].split("```", 1)[0].replace(f'"OWNER/{run_dir.name}"', repr(str(out)))
    code = code.replace("max_new_tokens=128", "max_new_tokens=3")
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert type(namespace["model"]).__name__ == "LlavaForConditionalGeneration"


def test_publish_stage_uses_the_recipe_and_records_the_commit(run_dir: Path, hub: FakeHub) -> None:
    data = yaml.safe_load((run_dir / "recipe.yaml").read_text())
    data["stages"].append("publish")
    data["publish"] = {"repo_id": REPO, "private": True, "merged": False, "license": "cc-by-nc-4.0"}
    recipe = Recipe.model_validate(data)
    domain = SimpleNamespace(name="biomed", extras={"hub_datasets": ("someone/pmc-captions",)})
    ctx = StageContext(name="publish", recipe=recipe, domain=domain, layout=RunLayout(run_dir))
    load_stage("publish")(ctx)
    assert ctx.info["repo_url"].endswith(REPO) and ctx.info["changed"] is True
    assert ctx.info["commit"] == hub.commits(REPO)[-1].oid
    assert ctx.kept == 10
    card = ModelCard(hub.files(REPO)["README.md"].decode())
    assert card.data.license == "cc-by-nc-4.0" and card.data.datasets == ["someone/pmc-captions"]
    assert hub.repos[REPO].private
    assert TOKEN not in json.dumps(ctx.info)
