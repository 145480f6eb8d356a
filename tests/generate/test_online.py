"""The online path against a real HTTP server on 127.0.0.1 with injected faults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llava_adapt.generate.runner import generate_instructions
from llava_adapt.openai_client.cache import cache_key
from llava_adapt.openai_client.ratelimit import estimate_tokens
from llava_adapt.openai_client.retry import FatalRequestError
from llava_adapt.openai_client.transport import MissingApiKeyError
from tests.generate.fake_openai import FakeOpenAI
from tests.generate.helpers import fast_config, make_domain, read_rows, write_captions

pytestmark = pytest.mark.slow

LEAKY = (
    "Question:\nWhat is it?\n===\nAnswer:\nThe caption says it is a dog.\n===\nQuestion:\nA?\n===\nAnswer:\nB.\n==="
)


def run(tmp_path: Path, config, domain=None, **kw):
    return generate_instructions(
        domain or make_domain(),
        captions=tmp_path / "captions.jsonl",
        out=tmp_path / "instruct.jsonl",
        rejects=tmp_path / "rejects.jsonl",
        cache_dir=tmp_path / "cache",
        config=config,
        **kw,
    )


def test_happy_path_writes_llava_conversations_and_accounts_tokens_and_cost(tmp_path: Path, server: FakeOpenAI):
    records = write_captions(tmp_path / "captions.jsonl", 6)
    report = run(tmp_path, fast_config(server.url))
    rows = read_rows(tmp_path / "instruct.jsonl")
    assert sorted(r["id"] for r in rows) == [f"{r.id}:conversation:0" for r in records]
    first = next(r for r in rows if r["id"] == "rec-0000:conversation:0")
    assert first["image"] == "images/0000.png" and first["source"] == "conversation"
    assert [t["from"] for t in first["conversations"]] == ["human", "gpt", "human", "gpt"]
    assert first["conversations"][0]["value"] == "<image>\nWhat is shown?"
    assert read_rows(tmp_path / "rejects.jsonl") == []
    assert report.ok == 6 and report.requests == 6 and report.retries == 0
    usage = report.to_manifest()["usage"]["online"]
    assert usage["responses"] == 6 and usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    expected = (usage["prompt_tokens"] * 0.15 + usage["completion_tokens"] * 0.60) / 1e6  # gpt-4o-mini list price
    assert report.cost() == pytest.approx(expected)
    # the request is what the prompt files say: system, few-shot pairs, then the record
    body = server.chat_log()[0].body
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    assert body["model"] == "gpt-4o-mini" and body["max_tokens"] == 1024
    assert server.chat_log()[0].auth == "authorization"


def test_rerun_sends_nothing_and_a_fresh_output_is_rebuilt_from_the_cache(tmp_path: Path, server: FakeOpenAI):
    write_captions(tmp_path / "captions.jsonl", 5)
    run(tmp_path, fast_config(server.url))
    assert len(server.chat_log()) == 5
    again = run(tmp_path, fast_config(server.url))
    assert len(server.chat_log()) == 5 and again.resumed == 5 and again.ok == 5
    (tmp_path / "instruct.jsonl").unlink()  # e.g. the pipeline reruns the stage from scratch
    rebuilt = run(tmp_path, fast_config(server.url))
    assert len(server.chat_log()) == 5, "answers must come from the cache"
    assert rebuilt.cache_hits == 5 and rebuilt.ok == 5 and rebuilt.cost() == 0
    assert rebuilt.saved() > 0
    assert len(read_rows(tmp_path / "instruct.jsonl")) == 5


def test_every_record_ends_exactly_once_in_output_or_rejects_under_faults(tmp_path: Path, server: FakeOpenAI):
    records = write_captions(tmp_path / "captions.jsonl", 16)
    server.fault("429", retry_after=0.2, times=2)
    server.fault("500", match="number 1:")
    server.fault("503", match="number 2:", times=2)
    server.fault("reset", match="number 3:")
    server.fault("malformed", match="number 4:")
    server.fault("slow", match="number 5:", delay=1.2)
    server.fault("empty_choices", match="number 6:")
    server.fault("refusal", match="number 7:")
    server.fault("content", match="number 8:", content=LEAKY)
    server.fault("content", match="number 9:", content="Sure! Here is a nice conversation about the image.")
    server.fault("400", match="number 10:")
    server.fault("content", match="number 11:", content="I'm sorry, but I cannot see the image.")
    server.fault("content", match="number 12:", content="Question:\nOnly one?\n===\nAnswer:\nYes.\n===")
    report = run(tmp_path, fast_config(server.url, timeout_s=0.6))

    ok = {r["id"] for r in read_rows(tmp_path / "instruct.jsonl")}
    rejects = {r["id"]: r for r in read_rows(tmp_path / "rejects.jsonl")}
    expected = {f"{r.id}:conversation:0" for r in records}
    assert ok | set(rejects) == expected and not ok & set(rejects)
    assert len(read_rows(tmp_path / "instruct.jsonl")) == len(ok)  # no duplicates
    reasons = {key.split(":")[0]: row["reason"] for key, row in rejects.items()}
    assert reasons == {
        "rec-0006": "no choices",
        "rec-0007": "refusal",
        "rec-0008": "leak",
        "rec-0009": "unparseable",
        "rec-0010": "request failed",
        "rec-0011": "refusal",
        "rec-0012": "too few turns",
    }
    assert all(row["detail"] for row in rejects.values())
    assert "HTTP 400" in rejects["rec-0010:conversation:0"]["detail"]
    assert "caption says" in rejects["rec-0008:conversation:0"]["detail"]
    assert rejects["rec-0008:conversation:0"]["response"] == LEAKY
    # 2 x 429, 1 x 500, 2 x 503, reset, malformed, timeout: each retried once
    assert report.retries == 8 and report.requests == 16 + 8
    assert report.ok == 9 and sum(report.rejected.values()) == 7


def test_retry_after_is_honoured(tmp_path: Path, server: FakeOpenAI):
    write_captions(tmp_path / "captions.jsonl", 1)
    server.fault("429", retry_after=0.5)
    run(tmp_path, fast_config(server.url))
    first, second = server.chat_log()
    assert first.status == 429 and second.status == 200
    assert second.start - first.end >= 0.45  # backoff alone would be <= 0.05 s


def test_exhausted_retries_are_rejected_as_retryable_and_retried_by_the_next_run(tmp_path: Path, server: FakeOpenAI):
    write_captions(tmp_path / "captions.jsonl", 4)
    server.fault("503", match="number 2:", times=10)
    report = run(tmp_path, fast_config(server.url, max_retries=2))
    rejects = read_rows(tmp_path / "rejects.jsonl")
    assert [(r["id"], r["reason"], r["retryable"]) for r in rejects] == [
        ("rec-0002:conversation:0", "request failed after retries", True)
    ]
    assert report.incomplete == 1 and "run again" in report.summary()
    sent = len(server.chat_log())
    assert sent == 3 + 3  # three answered, one tried three times

    server.faults.clear()
    again = run(tmp_path, fast_config(server.url, max_retries=2))
    assert len(server.chat_log()) == sent + 1, "only the failed request is sent again"
    assert again.incomplete == 0 and again.ok == 4
    assert read_rows(tmp_path / "rejects.jsonl") == []
    assert sorted(r["id"] for r in read_rows(tmp_path / "instruct.jsonl")) == [
        f"rec-{i:04d}:conversation:0" for i in range(4)
    ]


def test_concurrency_never_exceeds_the_bound(tmp_path: Path, api_key: str):
    write_captions(tmp_path / "captions.jsonl", 12)
    with FakeOpenAI(delay_s=0.15) as server:
        run(tmp_path, fast_config(server.url, max_concurrency=3))
    assert server.max_in_flight == 3


def test_request_rate_limit_is_respected(tmp_path: Path, server: FakeOpenAI):
    write_captions(tmp_path / "captions.jsonl", 16)
    rpm = 1200  # 20 per second
    run(tmp_path, fast_config(server.url, requests_per_minute=rpm, max_concurrency=8))
    starts = sorted(e.start for e in server.chat_log())
    assert len(starts) == 16
    assert starts[-1] - starts[0] >= 15 / 20 - 0.05  # unlimited, 16 requests take a few milliseconds
    for i, t in enumerate(starts):  # in any 0.5 s window: at most 0.5 s x 20/s, plus one
        assert sum(1 for u in starts[i:] if u - t < 0.5) <= 10 + 1


def test_token_rate_limit_is_respected(tmp_path: Path, server: FakeOpenAI):
    write_captions(tmp_path / "captions.jsonl", 6)
    config = fast_config(server.url, max_tokens=100, max_concurrency=6)
    # size the limit from the real request size: about 4 requests per second
    probe = tmp_path / "probe"
    probe.mkdir()
    write_captions(probe / "captions.jsonl", 1)
    run(probe, config)
    tokens = estimate_tokens(server.chat_log()[0].body)
    server.log.clear()
    run(tmp_path, config.model_copy(update={"tokens_per_minute": tokens * 4 * 60}))
    log = sorted(server.chat_log(), key=lambda e: e.start)
    assert len(log) == 6
    assert log[-1].start - log[0].start >= 5 / 4 - 0.05


def test_bad_key_stops_the_run_naming_the_variable_and_never_the_key(tmp_path: Path, server: FakeOpenAI, api_key):
    write_captions(tmp_path / "captions.jsonl", 3)
    server.fault("401", times=100)
    with pytest.raises(FatalRequestError, match="LLAVA_ADAPT_TEST_KEY") as info:
        run(tmp_path, fast_config(server.url))
    assert api_key not in str(info.value)


def test_no_quota_stops_the_run(tmp_path: Path, server: FakeOpenAI):
    write_captions(tmp_path / "captions.jsonl", 2)
    server.fault("quota", times=100)
    with pytest.raises(FatalRequestError, match="quota"):
        run(tmp_path, fast_config(server.url))


def test_missing_key_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("LLAVA_ADAPT_TEST_KEY", raising=False)
    write_captions(tmp_path / "captions.jsonl", 1)
    with pytest.raises(MissingApiKeyError, match="LLAVA_ADAPT_TEST_KEY") as info:
        run(tmp_path, fast_config("http://127.0.0.1:9/v1"))
    assert "offline" in str(info.value)


def test_identical_requests_are_sent_once(tmp_path: Path, server: FakeOpenAI):
    rows = [{"id": f"dup-{i}", "image": f"{i}.png", "caption": "the same caption"} for i in range(4)]
    (tmp_path / "captions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = run(tmp_path, fast_config(server.url))
    assert len(server.chat_log()) == 1 and report.ok == 4 and report.cache_hits == 3
    key = cache_key(server.chat_log()[0].body)
    assert len(key) == 64


def test_second_sample_is_a_separate_request(tmp_path: Path, server: FakeOpenAI):
    write_captions(tmp_path / "captions.jsonl", 2)
    report = run(tmp_path, fast_config(server.url, samples_per_record=2))
    assert len(server.chat_log()) == 4 and report.ok == 4
    ids = sorted(r["id"] for r in read_rows(tmp_path / "instruct.jsonl"))
    assert ids == ["rec-0000:conversation:0", "rec-0000:conversation:1", "rec-0001:conversation:0",
                   "rec-0001:conversation:1"]  # fmt: skip


def test_azure_provider_uses_the_deployment_route_and_api_key_header(tmp_path: Path, server: FakeOpenAI):
    write_captions(tmp_path / "captions.jsonl", 2)
    root = server.url.removesuffix("/v1")
    config = fast_config(root, provider="azure", api_version="2024-10-21", model="my-gpt4o-deployment")
    report = run(tmp_path, config)
    assert report.ok == 2
    entry = server.chat_log()[0]
    assert entry.path == "/openai/deployments/my-gpt4o-deployment/chat/completions?api-version=2024-10-21"
    assert entry.auth == "api-key"
