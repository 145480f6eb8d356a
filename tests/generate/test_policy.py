"""Rate limiter, retry policy and price table."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from llava_adapt.openai_client.config import ModelPrice
from llava_adapt.openai_client.pricing import Usage, find_price
from llava_adapt.openai_client.ratelimit import Pacer, RateLimiter
from llava_adapt.openai_client.retry import Failure, parse_retry_after, retry_delay


def test_pacer_allows_at_most_rate_times_window_plus_one():
    pacer = Pacer(rate=2.0)  # 2 units per second
    now, starts = 0.0, []
    for _ in range(9):
        now += pacer.delay(now)
        pacer.consume(now, 1)
        starts.append(now)
    assert starts == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]
    pacer.consume(10.0, 3)  # after idling, a big cost goes at once and delays the next one
    assert pacer.delay(10.0) == pytest.approx(1.5)


@pytest.mark.slow
def test_rate_limiter_paces_requests_and_tokens_and_pauses():
    async def scenario() -> tuple[float, float, float]:
        limiter = RateLimiter(requests_per_minute=600, tokens_per_minute=None)  # 10 per second
        t0 = time.monotonic()
        await asyncio.gather(*(limiter.acquire() for _ in range(6)))
        requests = time.monotonic() - t0
        tokens = RateLimiter(tokens_per_minute=6000)  # 100 tokens per second
        t0 = time.monotonic()
        for _ in range(3):
            await tokens.acquire(25)
        token_time = time.monotonic() - t0
        limiter.pause(0.3)
        t0 = time.monotonic()
        await limiter.acquire()
        return requests, token_time, time.monotonic() - t0

    requests, tokens, paused = asyncio.run(scenario())
    assert requests >= 0.5 - 0.01
    assert tokens >= 0.5 - 0.01
    assert paused >= 0.29


def test_retry_after_headers():
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2099 07:28:00 GMT"}) > 1e6  # an HTTP date
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_retry_delay_prefers_the_server_and_caps_it():
    rng = random.Random(0)
    assert retry_delay(Failure("429", True, retry_after=7), 0, 1, 60, 120, rng) == 7
    assert retry_delay(Failure("429", True, retry_after=500), 0, 1, 60, 120, rng) == 120
    backoff = [retry_delay(Failure("503", True), n, 1, 10, 120, rng) for n in range(6)]
    assert 0.75 <= backoff[0] <= 1 and 6 <= backoff[3] <= 8 and 7.5 <= backoff[5] <= 10


def test_prices_and_cost():
    assert find_price("gpt-4o-2024-08-06").input_per_1m == 2.50  # longest prefix: gpt-4o, not gpt-4
    assert find_price("gpt-4o-mini-2024-07-18").input_per_1m == 0.15
    assert find_price("my-local-llama") is None
    custom = {"my-local-llama": ModelPrice(input_per_1m=0, output_per_1m=0)}
    assert find_price("my-local-llama", custom).output_per_1m == 0
    usage = Usage()
    usage.add({"usage": {"prompt_tokens": 1_000_000, "completion_tokens": 100_000,
                         "prompt_tokens_details": {"cached_tokens": 200_000}}})  # fmt: skip
    price = find_price("gpt-4o")
    assert usage.cost(price) == pytest.approx(0.8 * 2.5 + 0.2 * 1.25 + 0.1 * 10)
    assert usage.cost(price, 0.5) == pytest.approx(usage.cost(price) / 2)
    assert usage.cost(None) is None
