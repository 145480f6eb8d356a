"""Record types are checked, not stringified, wherever JSON rows become records."""

from __future__ import annotations

import pytest

from llava_adapt.data.jsonl import RecordFileError
from llava_adapt.data.llava_json import parse_conversation
from llava_adapt.data.records import CaptionRecord, RecordError

TURNS = [{"from": "human", "value": "<image>\nWhat is it?"}, {"from": "gpt", "value": "A dog."}]


@pytest.mark.parametrize("bad_id", [{"obj": 1}, ["a"], True, None, 1.5])
def test_a_conversation_id_that_is_not_text_or_an_integer_is_an_error(bad_id):
    with pytest.raises(RecordFileError, match="'id' must be text or an integer"):
        parse_conversation({"id": bad_id, "image": "a.png", "conversations": TURNS}, "f.json: record 0")
    assert parse_conversation({"id": 7, "image": "a.png", "conversations": TURNS}, "f.json: record 0").id == "7"


def test_a_caption_record_keeps_numbers_as_text_and_refuses_containers():
    record = CaptionRecord.from_dict({"id": 12, "image": "a.png", "caption": "c", "labels": {"age": 61, "p": 0.5}})
    assert record.id == "12" and record.labels == {"age": "61", "p": "0.5"}
    with pytest.raises(RecordError, match=r"^missing field 'image'; caption: expected text, got a list$"):
        CaptionRecord.from_dict({"id": "a", "caption": ["x"]})
    built = CaptionRecord(id="a", image="a.png", caption=["x"])  # what a careless source might build
    assert built.problem() == "caption is not text"
