"""Client-side rate limiting on requests per minute and (estimated) tokens per minute.

Each limit is a pacer (a token bucket of depth one request, also known as GCRA): a request costing `a` units may
start once the previous ones have "drained" at `rate` units per second. A request that starts a little late
(the event loop woke up up to `LATE_SLACK_S` after its slot) keeps its slot, so oversleeping does not push every
later request back. Over any window of `w` seconds the requests started therefore cost at most
`rate * (w + LATE_SLACK_S)` plus one request: the provider's per-minute limit holds in every minute, not just on
average. There is no burst allowance: after an idle spell the next request goes at once, the ones after it are paced.

A 429 with `Retry-After` from the server pauses every request, not only the one that got it: a provider's rate
limit is per account, so the other workers would hit it too.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

LATE_SLACK_S = 0.02  # how late a start may be and still count from its slot (asyncio oversleeps by a few ms)


class Pacer:
    """Spaces out costs so that they flow at no more than `rate` units per second.

    Args:
        rate (`float`): units per second.
    """

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = rate
        self._next = 0.0  # monotonic time from which the next cost may start

    def delay(self, now: float) -> float:
        """Seconds to wait at time `now` before the next cost may start."""
        return max(0.0, self._next - now)

    def consume(self, now: float, amount: float) -> None:
        """Account for `amount` units starting at time `now` (after waiting `delay(now)`)."""
        start = self._next if now - self._next <= LATE_SLACK_S else now
        self._next = start + amount / self.rate


class RateLimiter:
    """Requests-per-minute and tokens-per-minute limits; either may be `None` (no limit).

    Args:
        requests_per_minute (`float | None`): at most this many request starts per minute.
        tokens_per_minute (`float | None`): at most this many estimated tokens per minute.
    """

    def __init__(self, requests_per_minute: float | None = None, tokens_per_minute: float | None = None) -> None:
        self._requests = Pacer(requests_per_minute / 60) if requests_per_minute else None
        self._tokens = Pacer(tokens_per_minute / 60) if tokens_per_minute else None
        self._paused_until = 0.0
        self._lock = asyncio.Lock()  # waiters go in arrival order

    async def acquire(self, tokens: int = 0) -> None:
        """Wait until a request estimated at `tokens` tokens may start, and account for it."""
        async with self._lock:
            while True:
                now = time.monotonic()
                wait = max(
                    self._paused_until - now,
                    self._requests.delay(now) if self._requests else 0.0,
                    self._tokens.delay(now) if self._tokens else 0.0,
                )
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            if self._requests:
                self._requests.consume(now, 1)
            if self._tokens:
                self._tokens.consume(now, tokens)

    def pause(self, seconds: float) -> None:
        """Start no request for the next `seconds` (the server said so with `Retry-After`)."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)


def estimate_tokens(body: dict[str, Any]) -> int:
    """Tokens a request may consume, for the client-side token limiter: prompt characters / 4 + `max_tokens`.

    Providers count `max_tokens` against the token-rate limit before the answer exists; so does this estimate.
    """
    chars = sum(len(str(m.get("content", ""))) for m in body.get("messages", []))
    completion = body.get("max_tokens") or body.get("max_completion_tokens") or 0
    return math.ceil(chars / 4) + int(completion)
