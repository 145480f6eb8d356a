"""The `llava_med_chat` benchmark: LLaVA-Med's visual-chat questions read from the released JSONL layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llava_adapt.data.records import Skip, VQAItem
from llava_adapt.domain import SourceContext
from llava_adapt.domains.biomed import domain
from llava_adapt.domains.biomed.chat import ChatEvalArgs, image_domain, load, mention_texts
from tests.domains.biomed.chat_files import chat_rows, write_chat_eval


def _load(root: Path, **args) -> list[VQAItem | Skip]:
    return list(load(ChatEvalArgs(**args), SourceContext(data_root=root, output_dir=root / "out")))


def test_reads_the_released_layout(tmp_path: Path) -> None:
    write_chat_eval(tmp_path)
    items = _load(tmp_path)
    assert [i.id for i in items] == ["llava_med_chat-0", "llava_med_chat-1", "llava_med_chat-2"]
    first, second, third = items
    assert first.question == "What is the organ in the image?"  # "\n<image>" stripped, either side
    assert second.question == "Describe the image in detail."
    assert first.answer == "The organ in the image is the conjunctiva." and first.answer_type == "open"
    assert first.image == "images/18063892_F3.jpg" and (tmp_path / first.image).is_file()
    assert first.meta["caption"].startswith("Fig. 3: A cystic wall")
    assert first.meta["mentions"] == ["Inflammatory cells were not found ( Fig. 3 ) ."]
    assert third.meta["mentions"] == ["Decreased cerebral blood flow in the PFC ( figure 3 ) ."]
    # histology and gross are both true: LLaVA-Med's order puts histology first
    assert (first.meta["domain"], third.meta["domain"]) == ("histology", "ct_scan")
    assert (first.meta["category"], second.meta["category"]) == ("conversation", "detailed_description")


def test_types_and_limit(tmp_path: Path) -> None:
    write_chat_eval(tmp_path)
    assert [i.id for i in _load(tmp_path, types=["detailed_description"])] == ["llava_med_chat-1"]
    assert len(_load(tmp_path, limit=2)) == 2


def test_bad_lines_are_skipped_with_a_reason(tmp_path: Path) -> None:
    no_answer = {**chat_rows()[0], "question_id": 9, "gpt4_answer": ""}
    escaping = {**chat_rows()[0], "question_id": 10, "image": "../../etc/passwd"}
    write_chat_eval(tmp_path, ("{not json", json.dumps(no_answer), json.dumps(escaping), "[1, 2]"))
    out = _load(tmp_path)
    skips = [o.reason for o in out if isinstance(o, Skip)]
    assert skips == ["not a JSON object", "missing gpt4_answer", "image path escapes the data root",
                     "not a JSON object"]  # fmt: skip
    assert sum(isinstance(o, VQAItem) for o in out) == 3


def test_missing_file_and_escaping_paths_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="visual-chat questions file"):
        _load(tmp_path)
    write_chat_eval(tmp_path)
    with pytest.raises(ValueError, match="outside the data root"):
        _load(tmp_path, path="../elsewhere.jsonl")
    with pytest.raises(ValueError, match="outside the data root"):
        _load(tmp_path, image_dir="/")


def test_helpers() -> None:
    assert image_domain({"mri": True, "chest_xray": True}) == "chest_xray"
    assert image_domain({"ct_scan": False}) == "" and image_domain(None) == ""
    assert mention_texts("one  mention") == ["one mention"] and mention_texts(None) == []


def test_registered_with_a_judge_and_long_answers() -> None:
    bench = domain.benchmarks["llava_med_chat"]
    assert bench.judge is not None and bench.max_new_tokens == 512
    assert bench.args is ChatEvalArgs
