"""The real sources in the `general` recipe: what it defaults to, what `recipe validate` catches, and `prepare` on
real-format files through the pipeline (records written, images resolved, skips counted in the manifest)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from llava_adapt.recipe.loader import RecipeError, check_against_domain, load_recipe
from llava_adapt.run.pipeline import run_pipeline

from .real_format import CLEAN_139, COCO_SKIPPED_IMAGES, DOG_LINE, LCS_BAD, PERSON_LINE, write_coco, write_lcs


def test_the_recipe_reads_coco_and_its_tiny_preset_draws_shapes() -> None:
    data = load_recipe("general").recipe.data
    assert (data.source, data.args) == ("coco", {"split": "train", "year": 2017, "with_boxes": True, "limit": None})
    tiny = load_recipe("general", preset="tiny").recipe.data
    assert (tiny.source, tiny.root, tiny.args) == ("shapes", ".", {"num_images": 600})  # coco's args dropped


def test_switching_the_source_on_the_command_line_replaces_its_arguments() -> None:
    loaded = load_recipe(
        "general",
        overrides=["data.source=llava_pretrain", "data.args={path: lcs.jsonl, image_dir: LLaVA-Pretrain/images}"],
    )
    assert loaded.recipe.data.args == {"path": "lcs.jsonl", "image_dir": "LLaVA-Pretrain/images"}
    assert check_against_domain(loaded.recipe) == []


@pytest.mark.parametrize(
    ("overrides", "key", "message"),
    [
        (["data.args.instance=boxes.json"], "data.args.instance", "unknown key. Did you mean 'instances'?"),
        (["data.args.with_box=false"], "data.args.with_box", "Did you mean 'with_boxes'?"),
        (["data.source=llava_pretrain", "data.args={imagedir: x}"], "data.args.imagedir", "Did you mean 'image_dir'?"),
        (["data.args.limit=0"], "data.args.limit", "greater than or equal to 1"),
        (["data.args.split=test"], "data.args.split", "'train' or 'val'"),
        (["data.args.year=2015"], "data.args.year", "2014 or 2017"),
        (["data.source=cocoo"], "data.source", "Did you mean 'coco'?"),
    ],
)
def test_recipe_validate_names_the_key_and_the_fix(overrides: list[str], key: str, message: str) -> None:
    with pytest.raises(RecipeError) as info:
        load_recipe("general", overrides=overrides)
    problems = dict(info.value.problems)
    assert message in problems[key], problems


def _prepare(tmp_path: Path, root: Path, overrides: list[str]) -> tuple[dict, list[dict]]:
    run_dir = tmp_path / "run"
    overrides = ["stages=[prepare]", f"data.root={root}", *overrides]
    loaded = load_recipe("general", overrides=overrides, run_dir=str(run_dir))
    run_pipeline(loaded, loaded.domain())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    rows = [json.loads(line) for line in (run_dir / "data" / "captions.jsonl").read_text().splitlines()]
    return manifest["stages"]["prepare"], rows


def test_prepare_on_coco_files(tmp_path: Path) -> None:
    root = tmp_path / "coco"
    write_coco(root)
    stage, rows = _prepare(tmp_path, root, [])  # the recipe's own data.args: split train, year 2017, with boxes
    assert stage["status"] == "complete"
    assert [r["id"] for r in rows] == ["139", "285", "1296"]
    assert rows[0]["image"] == str((root / "train2017" / "000000000139.jpg").resolve())  # absolute: under data.root
    assert rows[0]["caption"] == CLEAN_139[0]
    assert rows[0]["context"] == {"captions": "\n".join(CLEAN_139), "boxes": f"{PERSON_LINE}\n{DOG_LINE}"}
    source_skips = Counter(COCO_SKIPPED_IMAGES.values()) + Counter(
        ["malformed image entry", "caption for unknown image id", "malformed caption annotation", "empty caption",
         "box for unknown image id"]
    )  # fmt: skip
    prepare_skips = {"image file missing": 1, "corrupt or unreadable image": 1}  # 1503 and 1761: prepare's checks
    assert stage["counts"] == {"kept": 3, "skipped": dict(sorted((source_skips + Counter(prepare_skips)).items()))}


def test_prepare_on_lcs_558k_jsonl(tmp_path: Path) -> None:
    root = tmp_path / "playground"
    write_lcs(root)
    args = "data.args={path: LLaVA-Pretrain/blip_laion_cc_sbu_558k.jsonl, image_dir: LLaVA-Pretrain/images}"
    stage, rows = _prepare(tmp_path, root, ["data.source=llava_pretrain", args])
    assert [(r["id"], Path(r["image"]).name) for r in rows] == [
        ("004539375", "004539375.jpg"),
        ("002239345", "002239345.jpg"),
    ]
    assert all(Path(r["image"]).is_file() for r in rows)
    assert stage["counts"] == {"kept": 2, "skipped": dict(sorted(Counter(why for _, why in LCS_BAD).items()))}
