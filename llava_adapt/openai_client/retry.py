"""What to do when a request fails: retry (and after how long), reject the one request, or stop the run.

The openai client's own retries are switched off (`max_retries=0`) so that every retry goes through the rate
limiter, is counted on the progress bar, and follows one policy:

- retry: connection errors, timeouts, HTTP 408/409/429/5xx, and 200 replies whose body is not valid JSON; wait
  what the server asks (`retry-after-ms`, then `retry-after` in seconds or as an HTTP date, capped at
  `max_retry_after_s`), else exponential backoff with jitter (`backoff_base_s * 2**attempt`, capped at
  `backoff_max_s`). A server's `x-should-retry: true|false` header overrides the status code.
- a 429 with a wait (`Retry-After`, `retry-after-ms`) is the server pacing the client, not a failure: it pauses
  every request for that wait and is retried without using up `max_retries`, for up to `max_rate_limit_wait_s`
  after the request's first such 429 (then the request is rejected as retryable, its detail starting with
  "rate limited for"). A 429 without a wait counts against `max_retries` like a 5xx.
- reject the request: other 4xx (400 context too long, 422, ...): the reject says what the server said.
- stop the run: 401/403 (the key), 404 (the model or endpoint) and 429 `insufficient_quota`: every other request
  would fail the same way.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass

import openai

from llava_adapt.errors import InputError
from llava_adapt.scrub import scrub

RETRYABLE_STATUS = {408, 409, 429}
REQUEST_FAILED = "request failed"  # reject reason: the server refused this request (not retryable)
RETRIES_EXHAUSTED = "request failed after retries"  # reject reason: retried; a later run tries again


class FatalRequestError(InputError, RuntimeError):
    """A failure that every request would share (bad key, unknown model, no quota): the run stops."""


class MalformedResponseError(ValueError):
    """A 200 reply whose body is not a JSON object."""


@dataclass(frozen=True)
class Failure:
    """One failed attempt.

    Args:
        detail (`str`): what happened, e.g. `"HTTP 503: overloaded"`.
        retryable (`bool`): whether trying again may help.
        retry_after (`float | None`, defaults to `None`): the delay the server asked for, in seconds.
        rate_limited (`bool`, defaults to `False`): a 429 (the whole client should slow down).
    """

    detail: str
    retryable: bool
    retry_after: float | None = None
    rate_limited: bool = False


def parse_retry_after(headers: object) -> float | None:
    """Seconds to wait from `retry-after-ms` or `retry-after` (seconds or an HTTP date), or `None`."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    millis = get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _message(exc: openai.APIStatusError) -> str:
    """What the server said, scrubbed: a server may echo the API key it was sent (`llava_adapt.scrub`)."""
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return scrub(str(inner["message"]))[:300]
    return scrub(str(exc.message))[:300]


def _code(exc: openai.APIStatusError) -> str | None:
    body = exc.body
    inner = body.get("error", body) if isinstance(body, dict) else None
    return str(inner.get("code")) if isinstance(inner, dict) and inner.get("code") else None


def classify(exc: BaseException, api_key_env: str, model: str, timeout_s: float, section: str) -> Failure:
    """Turn an exception from one request into a `Failure`.

    Args:
        exc (`BaseException`): what the request raised.
        api_key_env (`str`): the key's environment variable (named in errors, the key itself never is).
        model (`str`): the model requested (named in errors).
        timeout_s (`float`): the per-request timeout (named in errors).
        section (`str`): the recipe section of the client's settings (`generate`, `evaluate.judge`), named in errors.

    Raises:
        FatalRequestError: the failure would repeat for every request.
        BaseException: `exc` itself when it is not a request failure (a bug must not become a reject).
    """
    if isinstance(exc, openai.APITimeoutError):
        return Failure(f"timed out after {timeout_s:g} s", retryable=True)
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return Failure(scrub(f"connection error: {type(cause).__name__}: {cause}")[:300], retryable=True)
    if isinstance(exc, MalformedResponseError):
        return Failure(f"malformed response: {exc}", retryable=True)
    if not isinstance(exc, openai.APIStatusError):
        raise exc
    status, message = exc.status_code, _message(exc)
    if status in (401, 403):
        raise FatalRequestError(
            f"the server refused the API key from ${api_key_env} (HTTP {status}: {message}); "
            f"set {api_key_env} to a valid key"
        ) from None
    if status == 404:
        raise FatalRequestError(
            f"model {model!r} or the endpoint was not found (HTTP 404: {message}); check {section}.model and "
            f"{section}.base_url"
        ) from None
    if status == 429 and _code(exc) == "insufficient_quota":
        raise FatalRequestError(f"the account has no quota left (HTTP 429: {message})") from None
    should_retry = exc.response.headers.get("x-should-retry")
    retryable = status in RETRYABLE_STATUS or status >= 500
    if should_retry in ("true", "false"):
        retryable = should_retry == "true"
    return Failure(
        f"HTTP {status}: {message}",
        retryable=retryable,
        retry_after=parse_retry_after(exc.response.headers),
        rate_limited=status == 429,
    )


def is_rate_limit_wait(failure: Failure) -> bool:
    """Whether `failure` is the server pacing the client: a retryable 429 that says how long to wait.

    Such a retry does not use up `max_retries` (it has its own bound, `max_rate_limit_wait_s`). A 429
    `insufficient_quota` never gets here: `classify` raises it as fatal.
    """
    return failure.rate_limited and failure.retryable and failure.retry_after is not None


def rate_limit_exhausted(failure: Failure, limited_s: float, delay_s: float, budget_s: float) -> Failure:
    """The final, retryable `Failure` of a request still rate-limited when its wait budget runs out.

    Args:
        failure (`Failure`): the last 429.
        limited_s (`float`): seconds since the request's first 429 with a wait.
        delay_s (`float`): the (capped) wait the server asked for this time.
        budget_s (`float`): `max_rate_limit_wait_s`.
    """
    return Failure(
        f"rate limited for {limited_s:.1f} s and asked to wait {delay_s:g} s more, past "
        f"max_rate_limit_wait_s = {budget_s:g} s: {failure.detail}"[:300],
        retryable=True,
        retry_after=failure.retry_after,
        rate_limited=True,
    )


def retry_delay(
    failure: Failure, attempt: int, base_s: float, max_s: float, max_retry_after_s: float, rng: random.Random
) -> float:
    """Seconds to wait before retry number `attempt + 1` (`attempt` counts from 0).

    Args:
        failure (`Failure`): the failed attempt (its `retry_after` wins, capped at `max_retry_after_s`).
        attempt (`int`): attempts failed so far, minus one.
        base_s (`float`): backoff base.
        max_s (`float`): backoff cap.
        max_retry_after_s (`float`): cap on a server-requested delay.
        rng (`random.Random`): jitter source.
    """
    if failure.retry_after is not None:
        return min(failure.retry_after, max_retry_after_s)
    delay = min(max_s, base_s * 2**attempt)
    return delay * (1 - 0.25 * rng.random())
