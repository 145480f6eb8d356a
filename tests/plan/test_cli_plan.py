"""`llava-adapt recipe plan`: the JSON a user reads, on the tiny preset, on local config-only folders, and offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llava_adapt.cli import app
from llava_adapt.recipe.loader import load_recipe

pytestmark = pytest.mark.slow

runner = CliRunner()
TOTAL_7B = 7_063_427_072


def plan_json(*args: str) -> dict:
    result = runner.invoke(app, ["recipe", "plan", *args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real biomed tiny run's data stages (prepare + generate, offline): what its align and instruct train on."""
    run_dir = tmp_path_factory.mktemp("biomed-tiny")
    result = runner.invoke(
        app,
        ["recipe", "run", "biomed", "--preset", "tiny", "--run-dir", str(run_dir), "stages=[prepare,generate]"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return run_dir


def test_tiny_plan_before_the_run_follows_the_recipe(tmp_path: Path):
    recipe = load_recipe("biomed", preset="tiny").recipe
    asked = recipe.data.args["n_images"] + len(recipe.data.args["dicom_test_files"])  # 1,024 drawn + 5 DICOM files
    plan = plan_json("biomed", "--preset", "tiny", "--run-dir", str(tmp_path / "run"))
    stages = plan["stages"]
    assert list(stages) == recipe.stages
    assert stages["prepare"]["records"] == asked == 1029 and not stages["prepare"]["records_exact"]
    # one prompt type (conversation), 2 samples, for the first 128 captions (generate.limit)
    conversations = recipe.generate.limit * 1 * recipe.generate.samples_per_record
    assert stages["generate"]["records"] == stages["generate"]["requests"] == conversations
    assert stages["align"]["records"] == asked and stages["align"]["steps"] == recipe.align.max_steps == 300
    assert stages["instruct"]["records"] == conversations
    assert stages["instruct"]["steps"] == recipe.instruct.max_steps == 250
    assert stages["instruct"]["trainings"] == 2  # compare_without_align trains stage 2 twice
    # The tiny model: projector 64 -> 128 -> 128; LoRA r=16 on 2 layers of q, k, v, o (128 -> 128), gate, up
    # (128 -> 256), down (256 -> 128); lm_head 128 x 512 trained in full (train_lm_head).
    projector = 64 * 128 + 128 + 128 * 128 + 128
    assert stages["align"]["trainable_parameters"] == plan["parameters"]["projector"] == projector
    lora = 16 * 2 * (4 * 256 + 2 * 384 + 384)
    assert stages["instruct"]["trainable_by_part"] == {"projector": projector, "lm_head": 128 * 512, "lora": lora}
    assert plan["generate"]["backend"] == "offline" and plan["generate"]["cost_usd"] == 0
    assert plan["model"]["text_pretraining_steps"] == recipe.model.tiny.text_pretraining_steps == 200
    shown = runner.invoke(app, ["recipe", "plan", "biomed", "--preset", "tiny", "--run-dir", str(tmp_path / "run")])
    assert "trained 200 steps on the run's text" in " ".join(shown.output.split())


def test_tiny_plan_counts_what_the_real_run_wrote(tiny_run: Path):
    captions = len((tiny_run / "data" / "captions.jsonl").read_text().splitlines())
    conversations = len((tiny_run / "data" / "instruct.jsonl").read_text().splitlines())
    manifest = json.loads((tiny_run / "manifest.json").read_text())
    assert manifest["stages"]["prepare"]["counts"]["kept"] == captions
    assert 1024 <= captions <= 1029  # the recipe's 1,024 drawn images + the DICOM test files that convert
    stages = plan_json("biomed", "--preset", "tiny", "--run-dir", str(tiny_run))["stages"]
    assert stages["prepare"]["records"] == stages["align"]["records"] == captions
    assert stages["prepare"]["records_exact"] and stages["align"]["records_basis"] == "data/captions.jsonl"
    assert stages["instruct"]["records"] == conversations == 2 * 128  # generate.limit: the first 128 captions
    assert stages["instruct"]["records_exact"] and stages["generate"]["complete"]
    # A changed data section makes prepare's output stale: the plan no longer counts it.
    stale = plan_json("biomed", "--preset", "tiny", "--run-dir", str(tiny_run), "data.args.n_images=10")["stages"]
    assert stale["prepare"]["records"] == 15 and not stale["prepare"]["records_exact"]


def test_plan_of_a_local_llava_folder_with_only_config_json(tmp_path: Path, llava_7b: Path):
    plan = plan_json(
        "general", "model.source=llava", f"model.name_or_path={llava_7b}", "--run-dir", str(tmp_path / "run")
    )
    assert plan["parameters"] == {
        "total": TOTAL_7B,
        "vision_tower": 303_507_456,
        "projector": 20_979_712,
        "language_model": 6_607_605_760,
        "lm_head": 131_334_144,
    }
    stages = plan["stages"]
    assert stages["align"]["trainable_parameters"] == 20_979_712
    assert stages["instruct"]["trainable_parameters"] == 319_815_680 + 20_979_712
    assert stages["instruct"]["records"] is None and stages["instruct"]["steps"] is None
    assert stages["instruct"]["steps_per_1000_records"] == 63  # ceil(1000 / 16), 1 epoch, one GPU
    assert plan["model"]["image_tokens"] == 576 and plan["model"]["vision_tokens_per_image"] == 577
    for stage in ("align", "instruct"):
        assert stages[stage]["peak_memory_gb"] > 14  # at least the bf16 weights: 7.06e9 x 2 bytes = 13.2 GB
    assert set(plan["generate"]) >= {"requests", "input_tokens", "output_tokens", "cost_usd"}


def test_plan_of_components_from_config_only_folders(tmp_path: Path, components_7b: tuple[Path, Path]):
    """CLIP ViT-L/14-336 + Vicuna-7B v1.5 assembled as LLaVA-1.5: 32,000 + <image> + <pad> rows -> 32,064."""
    vision, language = components_7b
    plan = plan_json(
        "general",
        f"model.vision_tower={vision}",
        f"model.language_model={language}",
        "--run-dir",
        str(tmp_path / "run"),
        "--accelerate-config",
        "zero3",
    )
    assert plan["parameters"]["total"] == TOTAL_7B
    assert plan["model"]["vocabulary"].startswith("32064 rows")
    assert plan["distributed"] == {
        "kind": "zero3",
        "num_processes": 8,
        "description": plan["distributed"]["description"],
    }
    assert plan["stages"]["instruct"]["steps_per_1000_records"] == 8  # global batch 16 x 8 = 128


def test_default_biomed_plan_offline_fails_with_one_line_naming_the_config(tmp_path: Path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "COLUMNS": "80"}
    result = subprocess.run(
        [sys.executable, "-m", "llava_adapt", "recipe", "plan", "biomed", "--run-dir", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cannot read the config.json of model.name_or_path 'llava-hf/llava-1.5-7b-hf'")
    assert "HF_HUB_OFFLINE" in lines[0] and "local folder" in lines[0]


def test_a_folder_without_config_json_is_named(tmp_path: Path):
    empty = tmp_path / "model"
    empty.mkdir()
    result = runner.invoke(app, ["recipe", "plan", "biomed", f"model.name_or_path={empty}"])
    assert result.exit_code == 1
    assert f"model.name_or_path '{empty}' is a folder without config.json" in result.output


def test_table_output_shows_parameters_stages_memory_and_teacher(tmp_path: Path, llava_7b: Path):
    result = runner.invoke(
        app,
        ["recipe", "plan", "general", "model.source=llava", f"model.name_or_path={llava_7b}", "--run-dir",
         str(tmp_path / "run"), "--num-gpus", "8"],
        catch_exceptions=False,
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for text in (
        "7,063,427,072",
        "340,795,392",
        "8 per 1,000 records",
        "8 x GPU, DDP",
        "gpt-4o",
        "per 1,000 captions",
    ):
        assert text in result.output
