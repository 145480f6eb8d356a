"""The `coco` source: one record per image, LLaVA's teacher context (captions, then normalised boxes), skips."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

import pytest

from llava_adapt.data.jsonl import RecordFileError
from llava_adapt.data.records import CaptionRecord, Skip
from llava_adapt.domain import SourceContext
from llava_adapt.domains.general import domain
from llava_adapt.domains.general.coco import CocoArgs, box_line
from llava_adapt.generate.jobs import user_message
from llava_adapt.plugin import DataError

from .real_format import CAR_LINE, CLEAN_139, COCO_RECORDS, COCO_SKIPPED_IMAGES, DOG_LINE, PERSON_LINE, write_coco

BOX_LINE = re.compile(r"^[a-z][a-z ]*: \[(?:[01]\.\d{3}, ){3}[01]\.\d{3}\]$")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "coco"
    write_coco(root)
    return root


def load(root: Path, **args) -> list[CaptionRecord | Skip]:
    ctx = SourceContext(data_root=root, output_dir=root.parent / "out", seed=0)
    return list(domain.sources["coco"].load(CocoArgs(**args), ctx))


def records(items) -> dict[str, CaptionRecord]:
    return {r.id: r for r in items if isinstance(r, CaptionRecord)}


def test_box_line_normalises_coco_xywh_to_corners_with_three_decimals() -> None:
    assert box_line("person", [435.84, 116.16, 59.52, 216.96], 640, 480) == PERSON_LINE
    assert box_line("dog", [-3.0, 300, 99, 200], 640, 480) == DOG_LINE  # out of the image: clamped to [0, 1]


def test_one_record_per_image_with_every_caption_and_its_boxes(root: Path) -> None:
    items = load(root)
    kept = records(items)
    assert list(kept) == COCO_RECORDS  # the captions file's image order
    first = kept["139"]
    assert first.image == "train2017/000000000139.jpg"  # relative to the data root
    assert first.caption == CLEAN_139[0]  # stage 1 trains on one caption per image
    assert first.context == {"captions": "\n".join(CLEAN_139), "boxes": f"{PERSON_LINE}\n{DOG_LINE}"}
    assert kept["285"].context["boxes"] == CAR_LINE
    assert "boxes" not in kept["1296"].context  # no objects annotated: captions only, not a skip
    assert all(r.labels == {} for r in kept.values())


def test_skips_name_the_image_or_annotation_and_a_stable_reason(root: Path) -> None:
    skips = [s for s in load(root) if isinstance(s, Skip)]
    by_image = {s.id: s.reason for s in skips if s.id.isdigit() and int(s.id) in COCO_SKIPPED_IMAGES}
    assert by_image == {str(k): v for k, v in COCO_SKIPPED_IMAGES.items()}
    assert Counter(s.reason for s in skips) == Counter(
        {
            **Counter(COCO_SKIPPED_IMAGES.values()),
            "malformed image entry": 1,  # the entry with a string id
            "caption for unknown image id": 1,
            "malformed caption annotation": 1,
            "empty caption": 1,
            "box for unknown image id": 1,
        }
    )
    assert {s.id: s.reason for s in skips if s.reason.endswith("unknown image id")} == {
        "2003": "caption for unknown image id",
        "7": "box for unknown image id",
    }


def test_the_teacher_sees_captions_then_boxes_as_in_llavas_prompts(root: Path) -> None:
    record = records(load(root))["139"]
    message = user_message(domain, record)
    assert message == "\n".join(CLEAN_139) + f"\n\n{PERSON_LINE}\n{DOG_LINE}"
    # The general domain's few-shot contexts have the same layout: caption lines, a blank line, box lines.
    example = (Path(domain.prompts_dir) / "detailed_description" / "000_context.txt").read_text().strip()
    for text in (message, example):
        captions, boxes = text.split("\n\n")
        assert all(line and not BOX_LINE.match(line) for line in captions.splitlines())
        assert all(BOX_LINE.match(line) for line in boxes.splitlines())


def test_the_offline_generator_sends_real_images_to_a_teacher(root: Path) -> None:
    record = records(load(root))["139"]
    with pytest.raises(DataError, match="`shapes` source only; for real images use generate.backend: openai"):
        domain.offline_generator(record, "conversation", random.Random(0))


def test_without_boxes_no_instances_file_is_read(root: Path) -> None:
    (root / "annotations" / "instances_train2017.json").unlink()
    items = load(root, with_boxes=False)
    kept = records(items)
    # The images skipped only for their boxes (776, 885, 1000) are records now.
    assert list(kept) == ["139", "285", "776", "885", "1000", "1296", "1503", "1761"]
    assert all(set(r.context) == {"captions"} for r in kept.values())
    assert user_message(domain, kept["139"]) == "\n".join(CLEAN_139)


def test_limit_counts_records(root: Path) -> None:
    assert list(records(load(root, limit=2))) == ["139", "285"]


def test_split_and_year_name_the_default_files(root: Path) -> None:
    args = CocoArgs(split="val", year=2014)
    assert (args.captions_file(), args.instances_file(), args.images_folder()) == (
        "annotations/captions_val2014.json",
        "annotations/instances_val2014.json",
        "val2014",
    )
    with pytest.raises(FileNotFoundError, match=r"captions_val2014\.json is not an existing file \(data root "):
        load(root, split="val", year=2014)
    renamed = root / "annotations" / "caps.json"
    (root / "annotations" / "captions_train2017.json").rename(renamed)
    assert list(records(load(root, annotations="annotations/caps.json"))) == COCO_RECORDS


def test_missing_or_wrong_files_are_clear_errors(root: Path) -> None:
    (root / "annotations" / "instances_train2017.json").rename(root / "instances.json")
    with pytest.raises(FileNotFoundError, match="with_boxes: false for captions only"):
        load(root)
    with pytest.raises(ValueError, match="is outside the data root"):
        load(root, instances="../elsewhere.json")
    with pytest.raises(FileNotFoundError, match="COCO image folder .*images2017 is not an existing folder"):
        load(root, instances="instances.json", image_dir="images2017")

    (root / "list.json").write_text("[]")
    with pytest.raises(RecordFileError, match="list.json: expected a COCO annotation object"):
        load(root, annotations="list.json", with_boxes=False)
    with pytest.raises(RecordFileError, match="captions_train2017.json: not a COCO .* no 'categories' list"):
        load(root, instances="annotations/captions_train2017.json")
    (root / "broken.json").write_text('{"images": [')
    with pytest.raises(RecordFileError, match=r"broken.json:1:\d+: not valid JSON"):
        load(root, annotations="broken.json", with_boxes=False)


def test_instances_of_another_split_stop_the_run(root: Path) -> None:
    other = json.loads((root / "annotations" / "instances_train2017.json").read_text())
    for box in other["annotations"]:
        box["image_id"] += 1_000_000
    (root / "val_instances.json").write_text(json.dumps(other))
    with pytest.raises(DataError, match="same split and year"):
        load(root, instances="val_instances.json")
