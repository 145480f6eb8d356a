"""The request cache and the append-only output files survive kills; nothing is written twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llava_adapt.data.jsonl import RecordFileError
from llava_adapt.data.records import Conversation
from llava_adapt.generate.output import ResultWriter
from llava_adapt.openai_client.cache import ResponseCache, cache_key

TURNS = [{"from": "human", "value": "<image>\nQ"}, {"from": "gpt", "value": "A"}]


def test_cache_persists_across_connections_and_keys_are_exact(tmp_path: Path):
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.7}
    key = cache_key(body)
    assert key == cache_key(dict(reversed(list(body.items()))))  # key order does not matter
    assert key != cache_key({**body, "temperature": 0.2}) and key != cache_key(body, sample=1)
    with ResponseCache(tmp_path) as cache:
        assert cache.get(key) is None
        cache.put(key, {"choices": []}, "m")
    with ResponseCache(tmp_path) as cache:
        assert cache.get(key) == {"choices": []} and key in cache and len(cache) == 1
        cache.add_batch("b1", ["k1", "k2"], 1)
        assert cache.open_batches() == [("b1", 1)] and sorted(cache.batch_keys("b1")) == ["k1", "k2"]
        cache.close_batch("b1")
        assert cache.open_batches() == []


def test_torn_last_line_is_truncated_and_ids_are_resumed(tmp_path: Path):
    out, rejects = tmp_path / "out.jsonl", tmp_path / "rej.jsonl"
    with ResultWriter(out, rejects) as writer:
        writer.write(Conversation("a:t:0", "a.png", TURNS, "t"))
        writer.reject("b:t:0", "b", "t", "b.png", "leak", "detail")
    with open(out, "a") as fh:
        fh.write('{"id": "c:t:0", "image": "c.p')  # a write cut by kill -9
    writer = ResultWriter(out, rejects)
    assert writer.done == {"a:t:0", "b:t:0"} and writer.resumed_ok == 1
    assert dict(writer.resumed_rejects) == {"leak": 1}
    writer.write(Conversation("c:t:0", "c.png", TURNS, "t"))
    with pytest.raises(RuntimeError, match="written twice"):
        writer.write(Conversation("a:t:0", "a.png", TURNS, "t"))
    writer.close()
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["a:t:0", "c:t:0"]


def test_retryable_rejects_are_removed_on_resume(tmp_path: Path):
    out, rejects = tmp_path / "out.jsonl", tmp_path / "rej.jsonl"
    with ResultWriter(out, rejects) as writer:
        writer.reject("a:t:0", "a", "t", "a.png", "request failed after retries", "HTTP 503", retryable=True)
        writer.reject("b:t:0", "b", "t", "b.png", "request failed", "HTTP 400")
    writer = ResultWriter(out, rejects)
    writer.close()
    assert writer.retrying == 1 and writer.done == {"b:t:0"}
    assert [json.loads(line)["id"] for line in rejects.read_text().splitlines()] == ["b:t:0"]


def test_a_corrupt_complete_line_is_an_error_naming_file_and_line(tmp_path: Path):
    out = tmp_path / "out.jsonl"
    ResultWriter(out, tmp_path / "rej.jsonl").close()  # an output of llava-adapt's own ...
    out.write_text('{"id": "a"}\nnot json\n')  # ... damaged afterwards
    with pytest.raises(RecordFileError, match=r"out.jsonl:2"):
        ResultWriter(out, tmp_path / "rej.jsonl")
