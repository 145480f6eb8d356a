"""VQA-RAD, SLAKE and PathVQA loaders on miniature copies of their download layouts."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from llava_adapt.data.jsonl import RecordFileError
from llava_adapt.data.records import Skip, VQAItem
from llava_adapt.domain import SourceContext
from llava_adapt.domains.biomed import domain
from llava_adapt.domains.biomed.vqa import SlakeArgs, VQAArgs, load_path_vqa, load_slake, load_vqa_rad
from llava_adapt.plugin import DataError


def png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (6, 6), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def split(out: list) -> tuple[list[VQAItem], Counter[str]]:
    return [i for i in out if isinstance(i, VQAItem)], Counter(s.reason for s in out if isinstance(s, Skip))


def write_parquet(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def test_vqa_rad_osf_json(ctx: SourceContext):
    root = ctx.data_root / "vqa_rad"
    (root / "VQA_RAD Image Folder").mkdir(parents=True)
    rows = [
        {"qid": 1, "image_name": "synpic1.jpg", "question": "Is there  a fracture?", "answer": "Yes",
         "answer_type": "CLOSED", "phrase_type": "test_freeform", "image_organ": "CHEST"},
        {"qid": 2, "image_name": "synpic1.jpg", "question": "Where is the mass?", "answer": "left lung",
         "answer_type": "OPEN ", "phrase_type": "test_para"},
        {"qid": 3, "image_name": "synpic2.jpg", "question": "Is it CT?", "answer": "no", "answer_type": "",
         "phrase_type": "freeform"},
        {"qid": 4, "image_name": "../../../etc/passwd", "question": "q", "answer": "no", "phrase_type": "test_para"},
        {"qid": 5, "image_name": "synpic3.jpg", "question": "", "answer": "no", "phrase_type": "test_para"},
    ]  # fmt: skip
    (root / "VQA_RAD Dataset Public.json").write_text(json.dumps(rows))
    items, skips = split(list(load_vqa_rad(VQAArgs(path="vqa_rad"), ctx)))
    assert [(i.id, i.answer_type, i.choices) for i in items] == [
        ("vqa_rad-1", "closed", ["yes", "no"]),
        ("vqa_rad-2", "open", []),
    ]
    assert items[0].image == "vqa_rad/VQA_RAD Image Folder/synpic1.jpg" and items[0].question == "Is there a fracture?"
    assert items[0].answer == "yes"  # one of its choices
    assert items[0].meta == {"image_organ": "CHEST", "phrase_type": "test_freeform", "answer_type_source": "official"}
    assert skips == {"image path escapes the data root": 1, "missing question": 1}
    train, _ = split(list(load_vqa_rad(VQAArgs(path="vqa_rad", split="train"), ctx)))
    assert [(i.id, i.answer_type) for i in train] == [("vqa_rad-3", "closed")]  # no answer type: yes/no = closed
    assert train[0].meta["answer_type_source"] == "yes/no rule"
    closed_only, _ = split(list(load_vqa_rad(VQAArgs(path="vqa_rad", answer_types=["open"]), ctx)))
    assert [i.id for i in closed_only] == ["vqa_rad-2"]


def test_vqa_rad_and_path_vqa_parquet(ctx: SourceContext):
    red, blue = png((255, 0, 0)), png((0, 0, 255))
    rows = [
        {"image": {"bytes": red, "path": "a.jpg"}, "question": "is this normal?", "answer": "no"},
        {"image": {"bytes": red, "path": "a.jpg"}, "question": "what organ?", "answer": "liver"},
        {"image": {"bytes": blue, "path": "b.jpg"}, "question": "what stain?", "answer": "h&e"},
        {"image": {"bytes": b"\x89PNG broken", "path": "c.jpg"}, "question": "q?", "answer": "yes"},
        {"image": {"bytes": blue, "path": "b.jpg"}, "question": None, "answer": "yes"},
    ]
    write_parquet(ctx.data_root / "pvqa/data/test-00000-of-00001.parquet", rows)
    write_parquet(ctx.data_root / "pvqa/data/train-00000-of-00001.parquet", rows[:1])
    items, skips = split(list(load_path_vqa(VQAArgs(path="pvqa"), ctx)))
    assert [(i.answer, i.answer_type) for i in items] == [("no", "closed"), ("liver", "open"), ("h&e", "open")]
    assert items[0].image == items[1].image != items[2].image  # one file per distinct image
    assert len(list((ctx.output_dir / "path_vqa/test").iterdir())) == 2
    assert skips == {"corrupt or missing image": 1, "missing question or answer": 1}
    assert Image.open(ctx.output_dir / items[2].image).getpixel((0, 0)) == (0, 0, 255)
    rad, _ = split(list(load_vqa_rad(VQAArgs(path="pvqa", split="train"), ctx)))
    assert len(rad) == 1 and rad[0].image.startswith("vqa_rad/train/")
    with pytest.raises(FileNotFoundError, match="validation-"):
        list(load_path_vqa(VQAArgs(path="pvqa", split="validation"), ctx))


def test_slake_english_filter_and_types(ctx: SourceContext):
    root = ctx.data_root / "Slake1.0"
    (root / "imgs/xmlab1").mkdir(parents=True)
    rows = [
        {"qid": 10, "img_name": "xmlab1/source.jpg", "question": "Is the lung healthy?", "answer": "No",
         "answer_type": "CLOSED", "q_lang": "en", "modality": "X-Ray", "location": "Lung"},
        {"qid": 11, "img_name": "xmlab1/source.jpg", "question": "Which is bigger, liver or heart?",
         "answer": "Liver", "answer_type": "CLOSED", "q_lang": "en"},
        {"qid": 12, "img_name": "xmlab1/source.jpg", "question": "这是什么?", "answer": "肺",
         "answer_type": "OPEN", "q_lang": "zh"},
        {"qid": 13, "img_name": "xmlab1/source.jpg", "question": "What organ?", "answer": "Lung",
         "answer_type": "OPEN", "q_lang": "en"},
    ]  # fmt: skip
    (root / "test.json").write_text(json.dumps(rows, ensure_ascii=False))
    items, _ = split(list(load_slake(SlakeArgs(path="Slake1.0"), ctx)))
    assert [(i.id, i.answer_type, i.choices) for i in items] == [
        ("slake-10", "closed", ["yes", "no"]),
        ("slake-11", "closed", []),
        ("slake-13", "open", []),
    ]
    assert items[0].image == "Slake1.0/imgs/xmlab1/source.jpg" and items[0].meta["modality"] == "X-Ray"
    everything, _ = split(list(load_slake(SlakeArgs(path="Slake1.0", language="all", limit=3), ctx)))
    assert [i.id for i in everything] == ["slake-10", "slake-11", "slake-12"]
    scores = domain.benchmarks["slake"].metrics(items, ["No, it is not.", "The heart is bigger.", "lungs"])
    assert scores["closed_accuracy"] == pytest.approx(0.5) and scores["open_recall"] == 0.0


def test_bad_files(ctx: SourceContext):
    (ctx.data_root / "slake").mkdir()
    with pytest.raises(FileNotFoundError, match="test.json"):
        list(load_slake(SlakeArgs(path="slake"), ctx))
    (ctx.data_root / "slake/test.json").write_text('[{"qid": 1,}]')
    with pytest.raises(RecordFileError, match=r"test.json:1:\d+: not valid JSON"):
        list(load_slake(SlakeArgs(path="slake"), ctx))
    (ctx.data_root / "slake/test.json").write_text('{"qid": 1}')
    with pytest.raises(RecordFileError, match="expected a JSON list"):
        list(load_slake(SlakeArgs(path="slake"), ctx))
    with pytest.raises(ValueError, match="outside the data root"):
        list(load_vqa_rad(VQAArgs(path="/"), ctx))


# VQA-RAD's Hub copy: no answer type. "Is this an MRI or a CT scan?" / "MRI" is officially closed; the yes/no rule
# calls it open.
HUB_ROWS = [
    {"question": "is there a fracture?", "answer": "no"},
    {"question": "Is this an MRI or a CT scan?", "answer": "MRI"},
    {"question": "where is the lesion?", "answer": "left lobe"},
]
OSF_ROWS = [
    {"qid": 7, "image_name": "a.jpg", "question": "Is there a fracture? ", "answer": "No", "answer_type": "CLOSED",
     "phrase_type": "test_freeform"},
    {"qid": 8, "image_name": "a.jpg", "question": "Is this an  MRI or a CT scan?", "answer": "MRI",
     "answer_type": "CLOSED ", "phrase_type": "test_para"},
    {"qid": 9, "image_name": "b.jpg", "question": "Where is the lesion?", "answer": "Left lobe", "answer_type": "OPEN",
     "phrase_type": "test_freeform"},
]  # fmt: skip


def _hub_vqa_rad(ctx: SourceContext) -> None:
    red = png((255, 0, 0))
    write_parquet(ctx.data_root / "hub/data/test-00000-of-00001.parquet",
                  [{"image": {"bytes": red, "path": "a.jpg"}, **row} for row in HUB_ROWS])  # fmt: skip


def _types(items: list[VQAItem]) -> list[tuple[str, str]]:
    return [(i.answer_type, i.meta["answer_type_source"]) for i in items]


def test_vqa_rad_hub_parquet_takes_official_types_from_a_side_file(ctx: SourceContext):
    _hub_vqa_rad(ctx)
    bench = domain.benchmarks["vqa_rad"]
    guessed, _ = split(list(load_vqa_rad(VQAArgs(path="hub"), ctx)))
    assert _types(guessed) == [("closed", "yes/no rule"), ("open", "yes/no rule"), ("open", "yes/no rule")]
    scores = bench.metrics(guessed, ["no", "MRI", "left lobe"])
    assert (scores["n_closed"], scores["n_open"], scores["n_closed_by_rule"], scores["n_open_by_rule"]) == (1, 2, 1, 2)
    (note,) = bench.notes(guessed)
    assert note.startswith(
        "No official answer type for 3 of 3 questions: the yes/no rule typed them (1 closed, 2 open)"
    )
    assert "answer_type_file" in note

    (ctx.data_root / "osf").mkdir()
    (ctx.data_root / "osf/VQA_RAD Dataset Public.json").write_text(json.dumps(OSF_ROWS))
    official, _ = split(list(load_vqa_rad(VQAArgs(path="hub", answer_type_file="osf/VQA_RAD Dataset Public.json"),
                                          ctx)))  # fmt: skip
    assert _types(official) == [("closed", "official"), ("closed", "official"), ("open", "official")]
    assert official[1].answer == "MRI" and official[1].choices == []  # closed, not yes/no
    scores = bench.metrics(official, ["no", "It is a CT scan.", "left lobe"])
    assert (scores["n_closed"], scores["n_open"], scores["closed_accuracy"]) == (2, 1, 0.5)
    assert "n_closed_by_rule" not in scores and bench.notes(official) == []

    by_id = {"vqa_rad-test-1": "CLOSED"}  # one type given by item id; the others fall back on the rule
    (ctx.data_root / "types.json").write_text(json.dumps(by_id))
    partly, _ = split(list(load_vqa_rad(VQAArgs(path="hub", answer_type_file="types.json"), ctx)))
    assert _types(partly) == [("closed", "yes/no rule"), ("closed", "official"), ("open", "yes/no rule")]
    assert "for 2 of 3 questions" in bench.notes(partly)[0]


def test_vqa_rad_in_llava_meds_converted_layout(ctx: SourceContext):
    root = ctx.data_root / "data_RAD"
    (root / "images").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(root / "images/synpic1.jpg")
    rows = [
        {"id": 100, "image": "synpic1.jpg", "answer_type": "CLOSED",
         "conversations": [{"from": "human", "value": "<image>\nIs this an MRI or a CT scan?"},
                           {"from": "gpt", "value": "MRI"}]},
        {"id": 101, "image": "synpic1.jpg", "answer_type": "OPEN",
         "conversations": [{"from": "human", "value": "What organ is shown?\n<image>"},
                           {"from": "gpt", "value": "Brain"}]},
        {"id": 102, "image": "../../secret.jpg", "answer_type": "OPEN",
         "conversations": [{"from": "human", "value": "q?"}, {"from": "gpt", "value": "a"}]},
        {"id": 103, "image": "synpic1.jpg", "conversations": [{"from": "human", "value": "q?"}]},
    ]  # fmt: skip
    (root / "test.json").write_text(json.dumps(rows))
    items, skips = split(list(load_vqa_rad(VQAArgs(path="data_RAD"), ctx)))
    assert [(i.id, i.question, i.answer, i.answer_type) for i in items] == [
        ("vqa_rad-100", "Is this an MRI or a CT scan?", "MRI", "closed"),
        ("vqa_rad-101", "What organ is shown?", "Brain", "open"),
    ]
    assert items[0].image == "data_RAD/images/synpic1.jpg" and _types(items)[0] == ("closed", "official")
    assert skips == {"image path escapes the data root": 1, "missing conversations": 1}

    _hub_vqa_rad(ctx)  # the same file names the types of the Hub copy's questions
    (root / "test.json").write_text(json.dumps([
        {"id": 1, "image": "x.jpg", "answer_type": "CLOSED",
         "conversations": [{"from": "human", "value": "<image>\nIs this an MRI or a CT scan?"},
                           {"from": "gpt", "value": "MRI"}]},
    ]))  # fmt: skip
    typed, _ = split(list(load_vqa_rad(VQAArgs(path="hub", answer_type_file="data_RAD/test.json"), ctx)))
    assert _types(typed)[1] == ("closed", "official")


def test_answer_type_file_errors(ctx: SourceContext):
    _hub_vqa_rad(ctx)
    (ctx.data_root / "bad.json").write_text(json.dumps({"vqa_rad-test-0": "MAYBE"}))
    with pytest.raises(DataError, match="'vqa_rad-test-0' has type 'MAYBE'; expected CLOSED or OPEN"):
        list(load_vqa_rad(VQAArgs(path="hub", answer_type_file="bad.json"), ctx))
    (ctx.data_root / "untyped.json").write_text(json.dumps([{"question": "q", "answer": "a"}]))
    with pytest.raises(DataError, match="no question with an answer_type"):
        list(load_vqa_rad(VQAArgs(path="hub", answer_type_file="untyped.json"), ctx))
    with pytest.raises(FileNotFoundError, match="answer_type_file"):
        list(load_vqa_rad(VQAArgs(path="hub", answer_type_file="missing.json"), ctx))


@pytest.mark.parametrize("file_name", ["validate.json", "validation.json"])
@pytest.mark.parametrize("split_name", ["validation", "validate"])
def test_slake_validation_split_under_either_name(ctx: SourceContext, file_name: str, split_name: str):
    root = ctx.data_root / "Slake1.0"
    (root / "imgs").mkdir(parents=True)
    row = {"qid": 5, "img_name": "a.jpg", "question": "Is it CT?", "answer": "Yes", "answer_type": "CLOSED",
           "q_lang": "en"}  # fmt: skip
    (root / file_name).write_text(json.dumps([row]))
    items, _ = split(list(load_slake(SlakeArgs(path="Slake1.0", split=split_name), ctx)))
    assert [(i.id, i.answer_type) for i in items] == [("slake-5", "closed")]
    (root / file_name).unlink()
    with pytest.raises(FileNotFoundError, match=r"validation.json or validate.json not found"):
        list(load_slake(SlakeArgs(path="Slake1.0", split=split_name), ctx))
