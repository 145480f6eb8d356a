"""The offline path: deterministic, no network, same validation and output format, thousands of records a second."""

from __future__ import annotations

import random
from pathlib import Path

from llava_adapt.data.records import CaptionRecord
from llava_adapt.generate.config import GenerateConfig
from llava_adapt.generate.runner import generate_instructions
from tests.generate.helpers import make_domain, read_rows, write_captions


def run(tmp_path: Path, domain=None, **config):
    return generate_instructions(
        domain or make_domain(),
        captions=tmp_path / "captions.jsonl",
        out=tmp_path / "instruct.jsonl",
        rejects=tmp_path / "rejects.jsonl",
        cache_dir=tmp_path / "cache",
        config=GenerateConfig(backend="offline", **config),
        seed=7,
    )


def test_offline_is_deterministic_and_in_the_llava_format(tmp_path: Path):
    write_captions(tmp_path / "captions.jsonl", 300)
    report = run(tmp_path)  # every prompt type of the general prompts: 3 x 300 jobs
    assert report.ok == 900 and report.requests == 0 and not (tmp_path / "cache").exists()
    first = (tmp_path / "instruct.jsonl").read_text()
    rows = read_rows(tmp_path / "instruct.jsonl")
    assert {r["source"] for r in rows} == {"conversation", "detailed_description", "complex_reasoning"}
    assert all(r["conversations"][0]["value"].startswith("<image>\n") for r in rows)
    assert rows[0]["image"] == "images/0000.png"

    again = tmp_path / "again"
    again.mkdir()
    (again / "captions.jsonl").write_text((tmp_path / "captions.jsonl").read_text())
    run(again)
    assert (again / "instruct.jsonl").read_text() == first


def test_bad_offline_output_is_rejected_with_a_reason(tmp_path: Path):
    def generator(record: CaptionRecord, prompt_type: str, rng: random.Random):
        n = int(record.id[-1])
        if n == 0:
            return [{"from": "gpt", "value": "answer first"}]
        if n == 1:
            return [{"from": "human", "value": "Q?"}, {"from": "gpt", "value": "   "}]
        if n == 2:
            raise KeyError("finding")
        if n == 3:
            return [{"from": "human", "value": "Q?"}, {"from": "gpt", "value": "The caption says so."}]
        return [{"from": "human", "value": "Q? <image>"}, {"from": "gpt", "value": "Fine."}]

    write_captions(tmp_path / "captions.jsonl", 5)
    report = run(tmp_path, make_domain(offline_generator=generator), prompt_types=["conversation"])
    reasons = {r["record_id"]: r["reason"] for r in read_rows(tmp_path / "rejects.jsonl")}
    assert reasons == {
        "rec-0000": "invalid conversation",
        "rec-0001": "invalid conversation",
        "rec-0002": "offline generator error",
        "rec-0003": "leak",
    }
    assert report.ok == 1
    (row,) = read_rows(tmp_path / "instruct.jsonl")
    assert row["conversations"][0]["value"] == "<image>\nQ?"


def test_offline_resume_appends_only_what_is_missing(tmp_path: Path):
    write_captions(tmp_path / "captions.jsonl", 10)
    run(tmp_path, prompt_types=["conversation"], limit=4)
    assert len(read_rows(tmp_path / "instruct.jsonl")) == 4
    report = run(tmp_path, prompt_types=["conversation"])
    assert report.resumed == 4 and report.ok == 10
    assert [r["id"] for r in read_rows(tmp_path / "instruct.jsonl")] == [
        f"rec-{i:04d}:conversation:0" for i in range(10)
    ]
