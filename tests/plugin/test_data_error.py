"""A plugin signals bad input with `llava_adapt.plugin.DataError`: through the real command line, any plugin's
`DataError` is one line and exit code 2, while any other exception it raises is a bug and keeps its traceback.

The plugin here is third-party in every way that matters: an installed distribution outside `llava_adapt` and
`domains/`, registered through the entry-point group, importing only `llava_adapt.plugin`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llava_adapt.cli import app
from llava_adapt.errors import EXIT_INPUT
from tests.plugins import write_toy_recipe

THIRD_PARTY = """
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from llava_adapt.plugin import Benchmark, CaptionRecord, DataError, Domain, Source, VQAItem


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int = 2


def unreadable(args, ctx):
    raise DataError("slides.csv: column 'caption' is missing; export the captions with the slides")
    yield


def buggy(args, ctx):
    raise ValueError("a bug in the plugin")
    yield


def items(args, ctx):
    yield VQAItem(id="q", image="0.png", question="Colour?", answer="red", answer_type="closed", choices=["red"])


def make(name, load):
    return Domain(
        name=name,
        description="A third-party plugin for tests.",
        sources={"toy": Source("fails", load, Args)},
        benchmarks={"toy_vqa": Benchmark("One question", items, lambda items, predictions: {"accuracy": 0.0})},
        prompts_dir=Path(__file__).parent / "prompts",
        build_context=lambda record: record.caption,
        offline_generator=lambda record, prompt_type, rng: [],
    )


refusing = make("refusing", unreadable)
buggy_domain = make("buggy", buggy)
"""


@pytest.fixture
def recipe(tmp_path: Path, plugin_site) -> Path:
    plugin_site("histo-plugin", {"refusing": "histo_plugin:refusing", "buggy": "histo_plugin:buggy_domain"},
                {"histo_plugin": THIRD_PARTY})  # fmt: skip
    prompts = tmp_path / "site" / "histo_plugin" / "prompts" / "conversation"
    prompts.mkdir(parents=True)
    (prompts / "system_message.txt").write_text("You see a slide.")
    (prompts / "000_context.txt").write_text("Caption: a stained slide")
    (prompts / "000_response.txt").write_text("Question:\nWhat stain?\n===\nAnswer:\nH&E.")
    return write_toy_recipe(tmp_path)


def test_a_third_party_data_error_is_one_line_with_exit_code_2(recipe: Path, tmp_path: Path):
    run_dir = tmp_path / "run"
    args = ["recipe", "run", str(recipe), "--run-dir", str(run_dir), "domain=refusing", "stages=[prepare]"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == EXIT_INPUT == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    first = next(i for i, line in enumerate(lines) if line.startswith("error:"))
    assert lines[first] == "error: slides.csv: column 'caption' is missing; export the captions with the slides"
    assert lines[first + 1].startswith("stage 'prepare' is recorded as failed in") and len(lines) == first + 2
    assert json.loads((run_dir / "manifest.json").read_text())["stages"]["prepare"]["status"] == "failed"


def test_a_third_party_value_error_is_a_bug_and_keeps_its_traceback(recipe: Path, tmp_path: Path):
    args = ["recipe", "run", str(recipe), "--run-dir", str(tmp_path / "run"), "domain=buggy", "stages=[prepare]"]
    result = CliRunner().invoke(app, args)
    assert type(result.exception) is ValueError and str(result.exception) == "a bug in the plugin"
    assert "error: a bug in the plugin" not in result.output
