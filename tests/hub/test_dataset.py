"""`publish --dataset`: a run's captions and generated conversations as a Hub dataset repository, pushed to a
Hub-compatible server on 127.0.0.1 and read back with `datasets` — every record, no raw teacher response, no absolute
path, no patient identifier in the card, and DICOM-derived images embedded only when the user says they checked them.

The run is a real one: biomed's tiny preset (synthetic images and pydicom's DICOM files) with its conversations
written by a teacher on a fake OpenAI server, some of whose answers leak the caption and are rejected."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import typer
from datasets import load_dataset
from huggingface_hub import DatasetCard
from PIL import Image
from typer.testing import CliRunner

from llava_adapt.cli import app as cli_app
from llava_adapt.cli.errors import CommandGroup
from llava_adapt.cli.publish import register
from llava_adapt.data.jsonl import read_jsonl
from llava_adapt.hub.dataset import publish_dataset
from llava_adapt.hub.errors import PublishError
from tests.domains.biomed.helpers import dicom_file, phi_values
from tests.generate.fake_openai import FakeOpenAI
from tests.hub.fake_hub import FakeHub

REPO = "someone/biomed-instruct"
DICOM = ["CT_small.dcm", "MR_small.dcm"]
KEY_ENV = "LLAVA_ADAPT_TEST_DATASET_KEY"
LEAK = "As the caption says, this is a scan of the RIGHT-SIDE-SECRET region."


def teacher(body: dict) -> str:
    """Two User/Assistant turns; for MRI captions an answer that leaks the caption (rejected by the domain)."""
    answer = LEAK if "MRI" in body["messages"][-1]["content"] else "The image shows a scan."
    return f"User: What does the image show?\n\nAssistant: {answer}\n\nUser: Anything unusual?\n\nAssistant: No."


@pytest.fixture(scope="module")
def data_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory after `prepare` and `generate` (do not modify: use `data_run`)."""
    for name in DICOM:
        dicom_file(name)  # skips when pydicom's test files are not installed
    root = tmp_path_factory.mktemp("dataset_run")
    with pytest.MonkeyPatch.context() as patch, FakeOpenAI(responder=teacher) as server:
        patch.setenv(KEY_ENV, "sk-dataset-test-0123456789")
        overrides = [
            "stages=[prepare,generate]", f"data.root={root}", "data.args.n_images=6",
            f"data.args.dicom_test_files=[{','.join(DICOM)}]", "generate.backend=openai",
            f"generate.base_url={server.url}", f"generate.api_key_env={KEY_ENV}", "generate.model=gpt-4o",
            "generate.samples_per_record=1", "generate.max_retries=0",
        ]  # fmt: skip
        result = CliRunner().invoke(
            cli_app, ["recipe", "run", "biomed", "--preset", "tiny", "--run-dir", str(root / "run"), *overrides]
        )
    assert result.exit_code == 0, result.output
    return root / "run"


@pytest.fixture
def data_run(data_template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(data_template, tmp_path / "run"))


def _download(hub: FakeHub, folder: Path) -> dict[str, bytes]:
    files = hub.files(REPO, repo_type="dataset")
    for path, data in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
    return files


def _jsonl(path: Path) -> list[dict]:
    return [row for _, row in read_jsonl(path)]


@pytest.mark.slow
def test_dataset_repository_holds_every_record(data_run: Path, hub: FakeHub, tmp_path: Path) -> None:
    result = publish_dataset(data_run, REPO, retry_wait=0)
    assert result.changed and hub.calls("POST", "/api/repos/create")[0].body["type"] == "dataset"
    assert hub.calls("POST", f"/api/datasets/{REPO}/commit/main") and not hub.calls("POST", "/api/models/")
    folder = tmp_path / "downloaded"
    files = _download(hub, folder)
    assert sorted(files) == [
        ".gitattributes",
        "README.md",
        "captions/train-00000-of-00001.parquet",
        "conversations/train-00000-of-00001.parquet",
        "rejects/train-00000-of-00001.parquet",
    ]

    conversations, captions = _jsonl(data_run / "data/instruct.jsonl"), _jsonl(data_run / "data/captions.jsonl")
    rejects = _jsonl(data_run / "data/instruct_rejects.jsonl")
    assert conversations and captions and rejects and all(LEAK in r["response"] for r in rejects)
    loaded = load_dataset("parquet", data_files=str(folder / "conversations/*.parquet"), split="train")
    assert [(r["id"], r["image"], r["conversations"], r["prompt_type"]) for r in loaded] == [
        (c["id"], c["image"], c["conversations"], c["source"]) for c in conversations
    ]
    loaded = load_dataset("parquet", data_files=str(folder / "captions/*.parquet"), split="train")
    assert [(r["id"], r["image"], r["caption"]) for r in loaded] == [
        (c["id"], c["image"], c["caption"]) for c in captions
    ]
    loaded = load_dataset("parquet", data_files=str(folder / "rejects/*.parquet"), split="train")
    assert loaded.column_names == ["id", "record_id", "prompt_type", "image", "reason"]
    assert [r["id"] for r in loaded] == [r["id"] for r in rejects]
    assert len(load_dataset(str(folder), split="train")) == len(conversations)  # the card's configs: default
    assert len(load_dataset(str(folder), "captions", split="train")) == len(captions)
    for path, data in files.items():
        assert b"RIGHT-SIDE-SECRET" not in data and str(data_run.parent).encode() not in data, path
    assert (data_run / "data/images" / loaded[0]["image"]).is_file()  # paths are relative to data/images/

    again = publish_dataset(data_run, REPO, retry_wait=0)
    assert not again.changed and len(hub.commits(REPO, repo_type="dataset")) == 2


def test_dataset_card(data_run: Path, hub: FakeHub, tmp_path: Path) -> None:
    publish_dataset(data_run, REPO, license="cc-by-4.0", retry_wait=0)
    card = DatasetCard(hub.files(REPO, repo_type="dataset")["README.md"].decode())
    configs = {c["config_name"]: c for c in card.data.configs}
    assert configs["conversations"]["default"] and set(configs) == {"conversations", "captions", "rejects"}
    assert configs["captions"]["data_files"] == [{"split": "train", "path": "captions/train-*"}]
    assert card.data.license == "cc-by-4.0" and "biomed" in card.data.tags
    manifest = json.loads((data_run / "manifest.json").read_text())
    generate = manifest["stages"]["generate"]
    text = card.text
    assert "Source: `synthetic`" in text and "Licence: `cc-by-4.0`" in text
    assert "`gpt-4o` through an OpenAI-compatible API" in text
    assert f"Generated on {generate['ended'][:10]}" in text
    assert f"${generate['info']['generate']['cost_usd']:.2f} for {generate['info']['generate']['requests']}" in text
    assert "| conversation |" in text and "`biomed` v2, files sha256 `" in text
    (reason,) = {r["reason"] for r in _jsonl(data_run / "data/instruct_rejects.jsonl")}
    assert f"| generate | {generate['counts']['kept']} | {reason}: " in text
    assert "| prepare | " in text
    identifiers = set().union(*(phi_values(dicom_file(name)) for name in DICOM))
    assert identifiers and not [value for value in identifiers if value in str(card)]


def test_dicom_images_are_embedded_only_when_said_deidentified(data_run: Path, hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(PublishError, match=r"would upload 2 images converted from DICOM.*--i-have-deidentified"):
        publish_dataset(data_run, REPO, include_images=True, retry_wait=0)
    assert not hub.requests  # refused before anything was sent
    publish_dataset(data_run, REPO, include_images=True, deidentified=True, retry_wait=0)
    folder = tmp_path / "downloaded"
    _download(hub, folder)
    loaded = load_dataset("parquet", data_files=str(folder / "captions/*.parquet"), split="train")
    captions = _jsonl(data_run / "data/captions.jsonl")
    assert len(loaded) == len(captions)
    for row, caption in zip(loaded, captions, strict=True):
        with Image.open(data_run / "data/images" / caption["image"]) as original:
            assert isinstance(row["image"], Image.Image) and row["image"].size == original.size
    card = hub.files(REPO, repo_type="dataset")["README.md"].decode()
    assert "embedded in the Parquet files" in card


def test_a_run_without_generate_is_refused(data_run: Path, hub: FakeHub) -> None:
    manifest = json.loads((data_run / "manifest.json").read_text())
    del manifest["stages"]["generate"]
    (data_run / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PublishError, match="the generate stage of .* has not completed \\(never ran\\)"):
        publish_dataset(data_run, REPO, retry_wait=0)


def test_publish_command(data_run: Path, hub: FakeHub) -> None:
    app = typer.Typer(cls=CommandGroup)  # the root app's error handling
    register(app)
    runner = CliRunner()
    result = runner.invoke(app, ["publish", str(data_run), "--dataset", REPO, "--private"])
    assert result.exit_code == 0, result.output
    assert "Published the dataset: 4 files" in result.output and hub.repos[f"datasets/{REPO}"].private
    refused = runner.invoke(app, ["publish", str(data_run), "--dataset", REPO, "--include-images"])
    assert refused.exit_code == 2 and "--i-have-deidentified" in refused.output
    neither = runner.invoke(app, ["publish", str(data_run)])
    assert neither.exit_code == 2 and "--repo-id" in neither.output and "--dataset" in neither.output
