"""429s with Retry-After pace the engine without using up `max_retries`; their own bound is a wait budget."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from llava_adapt.generate.runner import generate_instructions
from llava_adapt.openai_client.retry import RETRIES_EXHAUSTED
from tests.generate.fake_openai import FakeOpenAI
from tests.generate.helpers import fast_config, make_domain, read_rows, write_captions


def run(tmp_path: Path, config):
    return generate_instructions(
        make_domain(),
        captions=tmp_path / "captions.jsonl",
        out=tmp_path / "instruct.jsonl",
        rejects=tmp_path / "rejects.jsonl",
        cache_dir=tmp_path / "cache",
        config=config,
    )


def requests_of(server: FakeOpenAI, number: int) -> list:
    return [e for e in server.chat_log() if f"number {number}:" in e.last_user]


@pytest.mark.slow
def test_server_rate_limit_alone_paces_the_run_and_rejects_nothing(tmp_path: Path, api_key: str):
    records = write_captions(tmp_path / "captions.jsonl", 30)
    with FakeOpenAI(delay_s=0.02, rate_limit=20, rate_burst=1) as server:
        report = run(tmp_path, fast_config(server.url, max_retries=1, max_concurrency=4))
    ids = [r["id"] for r in read_rows(tmp_path / "instruct.jsonl")]
    assert sorted(ids) == sorted(f"{r.id}:conversation:0" for r in records)  # each exactly once
    assert read_rows(tmp_path / "rejects.jsonl") == []
    limited = Counter(e.last_user for e in server.chat_log() if e.fault == "rate_limit")
    assert max(limited.values()) > 1, "some request must get more 429s than max_retries, or this proves nothing"
    assert report.rate_limit_retries == report.retries == server.rate_limited
    assert report.requests == 30 + server.rate_limited


def test_more_retry_after_429s_than_max_retries_still_succeed(tmp_path: Path, server: FakeOpenAI):
    write_captions(tmp_path / "captions.jsonl", 3)
    server.fault("429", match="number 1:", retry_after=0.02, times=5)
    report = run(tmp_path, fast_config(server.url, max_retries=1))
    assert report.ok == 3 and read_rows(tmp_path / "rejects.jsonl") == []
    assert [e.status for e in requests_of(server, 1)] == [429] * 5 + [200]
    assert report.retries == report.rate_limit_retries == 5
    assert report.to_manifest()["rate_limit_retries"] == 5
    assert "5 retries, 5 of them after a rate limit" in report.summary()


@pytest.mark.slow
def test_rate_limit_past_the_wait_budget_is_rejected_as_retryable(tmp_path: Path, server: FakeOpenAI):
    write_captions(tmp_path / "captions.jsonl", 3)
    server.fault("429", match="number 1:", retry_after=0.1, times=1000)
    report = run(tmp_path, fast_config(server.url, max_retries=1, max_rate_limit_wait_s=0.35))
    # 0.35 s of waiting at 0.1 s per Retry-After: the record gave up after a few tries, not after 1000
    assert 2 <= len(requests_of(server, 1)) <= 5
    [reject] = read_rows(tmp_path / "rejects.jsonl")
    assert reject["id"] == "rec-0001:conversation:0"
    assert reject["reason"] == RETRIES_EXHAUSTED and reject["retryable"] is True
    assert reject["detail"].startswith("rate limited for ") and "max_rate_limit_wait_s = 0.35 s" in reject["detail"]
    assert "HTTP 429" in reject["detail"]
    sent = requests_of(server, 1)
    assert 2 <= len(sent) <= 4  # 0.1 s waits: none that would end 0.35 s after the first 429 is taken
    assert sent[-1].start - sent[0].end < 0.35 + 0.1
    assert report.ok == 2 and report.incomplete == 1
    assert report.rate_limit_retries == report.retries == len(sent) - 1

    server.faults.clear()  # a rerun sends it again
    again = run(tmp_path, fast_config(server.url, max_retries=1, max_rate_limit_wait_s=0.35))
    assert again.ok == 3 and again.incomplete == 0 and read_rows(tmp_path / "rejects.jsonl") == []


def test_server_errors_and_429_without_retry_after_still_count_against_max_retries(tmp_path: Path, server: FakeOpenAI):
    write_captions(tmp_path / "captions.jsonl", 4)
    server.fault("500", match="number 1:", times=2)
    server.fault("429", match="number 2:", times=2)  # no Retry-After: an ordinary retryable failure
    server.fault("429", match="number 3:", retry_after=0.01, times=3)  # free ...
    server.fault("500", match="number 3:")  # ... so this one may use the only retry
    report = run(tmp_path, fast_config(server.url, max_retries=1))
    rejects = {r["id"]: r for r in read_rows(tmp_path / "rejects.jsonl")}
    assert sorted(rejects) == ["rec-0001:conversation:0", "rec-0002:conversation:0"]
    assert all(r["reason"] == RETRIES_EXHAUSTED and r["retryable"] for r in rejects.values())
    assert rejects["rec-0001:conversation:0"]["detail"].startswith("HTTP 500")
    assert rejects["rec-0002:conversation:0"]["detail"].startswith("HTTP 429")
    assert [e.status for e in requests_of(server, 1)] == [500, 500]
    assert [e.status for e in requests_of(server, 2)] == [429, 429]
    assert [e.status for e in requests_of(server, 3)] == [429, 429, 429, 500, 200]
    assert report.ok == 2 and report.retries == 1 + 1 + 4 and report.rate_limit_retries == 3
