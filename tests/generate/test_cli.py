"""`llava-adapt data generate`: offline and online runs, and errors that say what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from llava_adapt.cli.data import app
from llava_adapt.cli.errors import CommandGroup
from tests.generate.fake_openai import FakeOpenAI
from tests.generate.helpers import read_rows, write_captions

root = typer.Typer(cls=CommandGroup)  # the root app's error handling
root.add_typer(app, name="data")  # as the main CLI mounts it


@root.callback()
def _root() -> None:
    pass


class Result:
    def __init__(self, result) -> None:
        self.exit_code = result.exit_code
        self.output = " ".join(result.output.split())  # rich wraps long lines


def invoke(*args: str) -> Result:
    return Result(CliRunner().invoke(root, ["data", "generate", *args], catch_exceptions=False))


@pytest.fixture
def toy(plugin_site, tmp_path: Path) -> Path:
    plugin_site("toy-plugin", {"toy": "toy_plugin:domain"}, {"toy_plugin": "TOY:toy"})
    write_captions(tmp_path / "caps.jsonl", 3, labels={"colour": "blue"})
    return tmp_path


def test_offline_generate(toy: Path):
    result = invoke("--domain", "toy", "--captions", str(toy / "caps.jsonl"), "--out", str(toy / "o.jsonl"),
                    "--offline", "--no-progress")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "3 conversations" in result.output
    assert [r["conversations"][1]["value"] for r in read_rows(toy / "o.jsonl")] == ["blue"] * 3
    assert (toy / "o.rejects.jsonl").exists()


def test_online_generate_with_limit_and_rate_options(toy: Path, api_key: str):
    with FakeOpenAI(responder=lambda body: "Question:\nColour?\n===\nAnswer:\nBlue.\n===") as server:
        result = invoke("--domain", "toy", "--captions", str(toy / "caps.jsonl"), "--out", str(toy / "o.jsonl"),
                        "--base-url", server.url, "--api-key-env", "LLAVA_ADAPT_TEST_KEY", "--model", "gpt-4o",
                        "--limit", "2", "--rpm", "6000", "--tpm", "1000000", "--max-concurrency", "2",
                        "--no-progress")  # fmt: skip
        assert len(server.chat_log()) == 2
    assert result.exit_code == 0, result.output
    assert "2 requests" in result.output and "cost $" in result.output
    assert (toy / "o.cache").is_dir()


def test_missing_key_names_the_variable(toy: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    result = invoke("--domain", "toy", "--captions", str(toy / "caps.jsonl"), "--out", str(toy / "o.jsonl"))
    assert result.exit_code == 2 and "OPENAI_API_KEY is not set" in result.output
    assert not (toy / "o.jsonl").exists(), "nothing is written before the configuration is checked"


def test_unknown_prompt_type_and_domain(toy: Path):
    result = invoke("--domain", "toy", "--captions", str(toy / "caps.jsonl"), "--out", str(toy / "o.jsonl"),
                    "--offline", "--prompt-type", "conversaton")  # fmt: skip
    assert result.exit_code == 2 and "Did you mean 'conversation'" in result.output
    result = invoke("--domain", "tyo", "--captions", str(toy / "caps.jsonl"), "--out", str(toy / "o.jsonl"))
    assert result.exit_code == 2 and "unknown domain 'tyo'" in result.output


def test_malformed_captions_name_file_and_line(toy: Path):
    bad = toy / "bad.jsonl"
    bad.write_text('{"id": "a", "image": "a.png", "caption": "x"}\n{"id": "b", "caption": "no image"}\n')
    result = invoke("--domain", "toy", "--captions", str(bad), "--out", str(toy / "o.jsonl"), "--offline")
    assert result.exit_code == 2 and "bad.jsonl:2: missing field 'image'" in result.output


def test_invalid_option_value(toy: Path):
    result = invoke("--domain", "toy", "--captions", str(toy / "caps.jsonl"), "--out", str(toy / "o.jsonl"),
                    "--rpm", "0")  # fmt: skip
    assert result.exit_code == 2 and "requests_per_minute" in result.output
