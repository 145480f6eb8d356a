"""A run directory copied or moved elsewhere still loads: with the README's stock snippet
(`AutoModelForImageTextToText.from_pretrained(f"{run}/instruct")`, PEFT installed), with `llava-adapt eval` and
`chat`, and with `export`; publishing an adapter does not upload the base it carries.

Reuses the finished tiny run of the publishing tests, laid out as a real one: the adapter's base is the run's
`align/`, named by an absolute path, and linked into `instruct/` as the instruct stage does after training
(`carry_base`). Nothing is trained.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
import typer
from transformers import AutoModelForImageTextToText, AutoProcessor
from typer.testing import CliRunner

from llava_adapt.cli.errors import CommandGroup
from llava_adapt.cli.eval import register
from llava_adapt.hub.export import export_merged
from llava_adapt.hub.run_info import published_files
from llava_adapt.model.carried_base import carry_base
from llava_adapt.model.load import load_trained
from tests.hub.conftest import run_dir, run_template  # noqa: F401  (fixtures)
from tests.hub.test_export import logits, make_image

pytestmark = pytest.mark.slow


def _invoke(*args: object):
    app = typer.Typer(cls=CommandGroup)  # the root app's error handling
    register(app)
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def original(run_dir: Path) -> Path:  # noqa: F811
    """The tiny run with its base in `align/` (absolute `base_model_name_or_path`) carried by `instruct/`."""
    config_path = run_dir / "instruct" / "adapter_config.json"
    config = json.loads(config_path.read_text())
    shutil.copytree(config["base_model_name_or_path"], run_dir / "align")
    config["base_model_name_or_path"] = str((run_dir / "align").resolve())
    config_path.write_text(json.dumps(config))
    assert carry_base(run_dir / "instruct")
    return run_dir


def test_the_adapter_carries_its_base_as_relative_links(original: Path) -> None:
    for name in ("config.json", "model.safetensors", "generation_config.json"):
        link = original / "instruct" / name
        assert link.is_symlink() and os.readlink(link) == f"../align/{name}"
    assert not carry_base(original / "align")  # a full model carries nothing
    published = {p.name for p in published_files(original / "instruct")}
    assert {"adapter_config.json", "adapter_model.safetensors", "processor_config.json"} <= published
    assert not published & {"config.json", "model.safetensors", "generation_config.json"}


@pytest.mark.parametrize("how", ["copytree", "move"])
def test_a_relocated_run_loads_with_the_stock_snippet_and_ours(original: Path, tmp_path: Path, how: str) -> None:
    expected = logits(*load_trained(original / "instruct"))
    moved = tmp_path / "elsewhere" / "run"
    moved.parent.mkdir()
    if how == "copytree":
        shutil.copytree(original, moved)
        shutil.rmtree(original)
    else:
        original.rename(moved)  # the links are relative: they still point at the moved align/
    assert not original.exists()

    stock = AutoModelForImageTextToText.from_pretrained(f"{moved}/instruct").eval()  # the README's snippet
    processor = AutoProcessor.from_pretrained(f"{moved}/instruct")
    torch.testing.assert_close(logits(stock, processor), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits(*load_trained(moved / "instruct")), expected, atol=1e-5, rtol=1e-5)

    merged = export_merged(moved, tmp_path / "merged")
    reloaded = AutoModelForImageTextToText.from_pretrained(merged).eval()
    torch.testing.assert_close(logits(reloaded, processor), expected, atol=1e-5, rtol=1e-5)

    make_image().save(tmp_path / "image.png")
    chat = _invoke(
        "chat", moved, "--image", tmp_path / "image.png", "--prompt", "What is shown?", "--max-new-tokens", 3
    )
    assert chat.exit_code == 0, chat.output
    shapes = ["--domain", "general", "--benchmark", "shapes_color", "--arg", "num_images=2", "--max-new-tokens", 2]
    evaluated = _invoke("eval", moved, *shapes)
    assert evaluated.exit_code == 0, evaluated.output
    assert (moved / "eval_cli" / "shapes_color" / "metrics.json").is_file()


def test_a_base_that_is_gone_is_a_clear_error(original: Path, tmp_path: Path) -> None:
    shutil.rmtree(original / "align")  # the links now point nowhere, and so does the absolute path
    make_image().save(tmp_path / "image.png")
    result = _invoke("chat", original, "--image", tmp_path / "image.png", "--prompt", "Hi")
    assert result.exit_code == 2 and "is not a model folder" in result.output
