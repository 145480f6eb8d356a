"""A run killed with SIGKILL and resumed: nothing answered is requested again, nothing is written twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from llava_adapt.generate.runner import generate_instructions
from llava_adapt.openai_client.cache import ResponseCache, cache_key
from tests.generate.fake_openai import FakeOpenAI
from tests.generate.helpers import REPO, fast_config, make_domain, read_rows, write_captions


def start_worker(url: str, folder: Path, *flags: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.generate.worker", url, str(folder), *flags], cwd=REPO, env=env
    )


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the worker"
        time.sleep(0.01)


def cached_keys(folder: Path) -> set[str]:
    with sqlite3.connect(folder / "cache" / ResponseCache.FILENAME) as db:
        return {row[0] for row in db.execute("SELECT key FROM responses")}


def resume(folder: Path, url: str, **overrides):
    return generate_instructions(
        make_domain(),
        captions=folder / "captions.jsonl",
        out=folder / "instruct.jsonl",
        rejects=folder / "rejects.jsonl",
        cache_dir=folder / "cache",
        config=fast_config(url, max_concurrency=2, **overrides),
    )


@pytest.mark.slow
def test_killed_run_resumes_without_repeating_answered_requests(tmp_path: Path, api_key: str):
    records = write_captions(tmp_path / "captions.jsonl", 40)
    with FakeOpenAI(delay_s=0.03) as server:
        worker = start_worker(server.url, tmp_path)
        wait_for(lambda: sum(1 for e in server.chat_log() if e.end) >= 12)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        first = [cache_key(e.body) for e in server.chat_log()]
        answered = cached_keys(tmp_path)
        assert 10 <= len(answered) < 40, "the kill must land mid-run (12 answered by the server, 2 may be in flight)"

        report = resume(tmp_path, server.url)
        second = [cache_key(e.body) for e in server.chat_log()][len(first) :]

    assert not set(second) & answered, "a request answered before the kill was sent again"
    repeated = set(first) & set(second)
    assert len(repeated) <= 2, "only requests in flight at the kill (max_concurrency) may be repeated"
    ids = [r["id"] for r in read_rows(tmp_path / "instruct.jsonl")]
    assert Counter(ids) == Counter(f"{r.id}:conversation:0" for r in records), "every record exactly once"
    assert report.ok == 40 and report.incomplete == 0


@pytest.mark.slow
def test_killed_batch_run_collects_its_batch_instead_of_submitting_again(tmp_path: Path, api_key: str):
    write_captions(tmp_path / "captions.jsonl", 5)
    with FakeOpenAI(batch_polls=10**9) as server:
        worker = start_worker(server.url, tmp_path, "--batch")
        wait_for(lambda: sum(p.startswith("GET /v1/batches/") for p in server.paths()) >= 2)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        assert server.paths().count("POST /v1/batches") == 1
        for batch in server.batches.values():
            batch.polls_left = 1  # the provider finishes the batch while nobody is polling

        report = resume(tmp_path, server.url, batch_api=True)
        assert server.paths().count("POST /v1/batches") == 1, "the interrupted batch is collected, not resubmitted"
        assert server.paths().count("POST /v1/files") == 1
        assert server.chat_log() == []
    assert report.ok == 5 and report.batch.responses == 5
    assert len(read_rows(tmp_path / "instruct.jsonl")) == 5
