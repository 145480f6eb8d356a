"""`prepare` on a generated corpus of bad inputs: every bad record is a counted skip with its reason, every bad file
one line naming it, and images that would break or mislead training are caught or converted faithfully."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from llava_adapt.cli import app
from llava_adapt.errors import EXIT_INPUT
from tests.badinput.corpus import (
    figure_corpus,
    good_png,
    latin1_jsonl,
    not_parquet,
    recipe,
    unknown_transfer_syntax_dicom,
)

runner = CliRunner()


def run(recipe_path: Path, *overrides: str):
    return runner.invoke(app, ["recipe", "run", str(recipe_path), *overrides])


def test_every_bad_record_is_a_counted_skip_with_its_reason(tmp_path: Path):
    figures, expected = figure_corpus(tmp_path)
    result = run(recipe(tmp_path, "figures", {"path": figures.name, "image_dir": "images"}))
    assert result.exit_code == 0, result.output
    stage = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]["prepare"]
    reasons = [reason for reason in expected.values() if reason]
    assert stage["counts"] == {"kept": 3, "skipped": {r: reasons.count(r) for r in sorted(set(reasons))}}
    assert stage["info"] == {"converted_images": 2}
    rows = {row["id"]: row for row in map(json.loads, (tmp_path / "run" / "data" / "captions.jsonl").open())}
    assert set(rows) == {key for key, reason in expected.items() if reason is None}
    assert rows["ok"]["image"] == str(tmp_path / "images" / "ok.png")  # an ordinary image is used where it is
    for key in ("gray16", "transparent"):
        assert rows[key]["image"].startswith("converted/") and rows[key]["image"].endswith(".png")


def test_a_16_bit_image_is_windowed_not_clipped_to_white(tmp_path: Path):
    figures, _ = figure_corpus(tmp_path)
    assert run(recipe(tmp_path, "figures", {"path": figures.name})).exit_code == 0
    rows = {row["id"]: row for row in map(json.loads, (tmp_path / "run" / "data" / "captions.jsonl").open())}
    with Image.open(tmp_path / "images" / "gray16.png") as original:
        clipped = np.asarray(original.convert("RGB"))  # what training would have seen
    with Image.open(tmp_path / "run" / "data" / "images" / rows["gray16"]["image"]) as converted:
        assert converted.mode == "RGB"
        pixels = np.asarray(converted)[..., 0].astype(int)
    assert (clipped == 255).mean() > 0.9  # the problem: almost entirely white
    assert pixels[:, 0].max() == 0 and pixels[:, -1].min() == 255  # the ramp spans black to white ...
    assert (np.diff(pixels[0]) >= 0).all() and 100 < pixels.mean() < 155  # ... in order, mid-grey on average


def test_a_transparent_image_is_composited_on_white(tmp_path: Path):
    figures, _ = figure_corpus(tmp_path)
    assert run(recipe(tmp_path, "figures", {"path": figures.name})).exit_code == 0
    rows = {row["id"]: row for row in map(json.loads, (tmp_path / "run" / "data" / "captions.jsonl").open())}
    with Image.open(tmp_path / "run" / "data" / "images" / rows["transparent"]["image"]) as converted:
        pixels = np.asarray(converted)
    assert tuple(pixels[0, 0]) == (255, 255, 255) and tuple(pixels[32, 32]) == (220, 20, 20)


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("figures.parquet", not_parquet, "figures.parquet: not a readable Parquet file"),
        (
            "figures.jsonl",
            lambda p: latin1_jsonl(p, [{"id": "a", "image": "ok.png", "caption": "Opacit\u00e9 basale."}]),
            "figures.jsonl:1: not UTF-8 text (byte 0xe9",
        ),
        (
            "figures.json",
            lambda p: p.write_bytes('[{"id": "a", "image": "ok.png", "caption": "\u00e9"}]'.encode("latin-1")),
            "figures.json: not UTF-8 text",
        ),
    ],
    ids=["not parquet", "jsonl not utf-8", "json not utf-8"],
)
def test_a_bad_file_is_one_line_naming_it(tmp_path: Path, name: str, make, message: str):
    (tmp_path / "images").mkdir()
    good_png(tmp_path / "images" / "ok.png")
    make(tmp_path / name)
    result = run(recipe(tmp_path, "figures", {"path": name}))
    assert result.exit_code == EXIT_INPUT
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.output
    assert "stage 'prepare' is recorded as failed" in result.output


def test_a_recipe_path_escaping_the_data_root_is_one_line(tmp_path: Path):
    (tmp_path / "data").mkdir()
    result = run(recipe(tmp_path / "data", "figures", {"path": "../../etc/passwd"}))
    assert result.exit_code == EXIT_INPUT and "Traceback" not in result.output
    assert "error: figure-caption file '../../etc/passwd' is outside the data root" in result.output


def test_a_dicom_file_with_an_unknown_transfer_syntax_is_a_counted_skip(tmp_path: Path):
    from pydicom.data import get_testdata_file

    studies = tmp_path / "dicom"
    (studies / "a").mkdir(parents=True)
    (studies / "b").mkdir()
    (studies / "a" / "ct.dcm").write_bytes(Path(get_testdata_file("CT_small.dcm")).read_bytes())
    unknown_transfer_syntax_dicom(studies / "b" / "ct.dcm")
    result = run(recipe(tmp_path, "dicom", {"path": "dicom", "missing_report": "describe"}))
    assert result.exit_code == 0, result.output
    counts = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]["prepare"]["counts"]
    assert counts == {"kept": 1, "skipped": {"unknown transfer syntax": 1}}
