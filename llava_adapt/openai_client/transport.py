"""The openai client, and one request with retries, rate limiting and a timeout.

The client is `AsyncOpenAI` (any OpenAI-compatible `base_url`: OpenAI, vLLM, a proxy) or `AsyncAzureOpenAI`,
with its own retries off: `call_with_retries` retries by the policy in `retry.py`, through the rate limiter,
counting every attempt in the report. The key is read from the environment variable the recipe names; it is
passed to the client and nowhere else.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import openai

from llava_adapt.errors import InputError
from llava_adapt.openai_client.config import ClientConfig
from llava_adapt.openai_client.ratelimit import RateLimiter, estimate_tokens
from llava_adapt.openai_client.report import ClientReport
from llava_adapt.openai_client.retry import (
    Failure,
    MalformedResponseError,
    classify,
    is_rate_limit_wait,
    rate_limit_exhausted,
    retry_delay,
)
from llava_adapt.scrub import register_secret

T = TypeVar("T")
log = logging.getLogger(__name__)
CHAT_PARAMS = ("model", "messages", "temperature", "max_tokens")


class ClientConfigError(InputError, RuntimeError):
    """The client cannot be built from the configuration (the message names the setting to fix)."""


class MissingApiKeyError(ClientConfigError):
    """The environment variable that should hold the API key is not set."""


def make_client(config: ClientConfig) -> openai.AsyncOpenAI:
    """The async client for `config` (key from `$config.api_key_env`, SDK retries off, per-request timeout).

    Args:
        config (`ClientConfig`): `provider`, `base_url`, `api_version`, `api_key_env`, `timeout_s` (its `section` and
            `missing_key_hint` word the errors).

    Raises:
        MissingApiKeyError: the variable is unset or empty (the message names it).
        ClientConfigError: Azure without an endpoint or API version (the message says which setting).
    """
    key = os.environ.get(config.api_key_env, "")
    register_secret(key)  # from now on no message of this process shows it
    if not key:
        raise MissingApiKeyError(
            f"{config.section} needs an API key but the environment variable {config.api_key_env} is not set. "
            f"Export it (export {config.api_key_env}=sk-...), name another one with {config.section}.api_key_env, "
            f"{config.missing_key_hint()}. A server without "
            f"authentication (vLLM) accepts any value, e.g. {config.api_key_env}=EMPTY."
        )
    if config.provider == "azure":
        endpoint = config.base_url or os.environ.get("AZURE_OPENAI_ENDPOINT")
        version = config.api_version or os.environ.get("OPENAI_API_VERSION")
        if not endpoint or not version:
            section = config.section
            missing = f"{section}.base_url (or $AZURE_OPENAI_ENDPOINT)" if not endpoint else ""
            missing += (" and " if missing and not version else "") + (
                f"{section}.api_version (or $OPENAI_API_VERSION)" if not version else ""
            )
            raise ClientConfigError(f"{section}.provider is 'azure' but {missing} is not set")
        return openai.AsyncAzureOpenAI(
            api_key=key, azure_endpoint=endpoint, api_version=version, max_retries=0, timeout=config.timeout_s
        )
    return openai.AsyncOpenAI(api_key=key, base_url=config.base_url, max_retries=0, timeout=config.timeout_s)


def decode_body(text: str) -> dict[str, Any]:
    """Parse a reply body that must be a JSON object.

    Raises:
        MalformedResponseError: it is not (the message quotes its start).
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedResponseError(f"{exc.msg} in {text[:80]!r}") from None
    if not isinstance(data, dict):
        raise MalformedResponseError(f"expected a JSON object, got {type(data).__name__}")
    return data


class Transport:
    """Sends requests for one run: retries, rate limit, timeout, and the tally of requests and retries.

    Args:
        client (`openai.AsyncOpenAI`): the client (`make_client`).
        config (`ClientConfig`): timeouts, retry and rate settings.
        report (`ClientReport`): counts requests and retries.
        on_retry (`Callable[[], None]`, *optional*): called after each counted retry (redraws the progress bar).
    """

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        config: ClientConfig,
        report: ClientReport,
        on_retry: Callable[[], None] | None = None,
    ) -> None:
        self.client, self.config, self.report = client, config, report
        self.limiter = RateLimiter(config.requests_per_minute, config.tokens_per_minute)
        self.on_retry = on_retry
        self._jitter = random.Random()

    async def call(self, make_call: Callable[[], Awaitable[T]], tokens: int = 0) -> T | Failure:
        """Run `make_call()` until it succeeds, fails for good, or runs out of retries.

        A 429 with `Retry-After` pauses every request for that wait (capped at `max_retry_after_s`) and is retried
        without using up `max_retries`, until a wait would end more than `max_rate_limit_wait_s` after the
        request's first such 429; every other retryable failure counts against `max_retries`. Both kinds are
        counted in `report.retries`, the first also in `report.rate_limit_retries`.

        Args:
            make_call (`Callable[[], Awaitable[T]]`): starts one attempt.
            tokens (`int`, defaults to `0`): the attempt's estimated tokens, for the token limiter.

        Returns:
            The result, or the `Failure` of the last attempt (for a request still rate-limited when its wait
            budget ran out: a retryable one whose detail starts with "rate limited for").

        Raises:
            FatalRequestError: the failure would repeat for every request (bad key, unknown model, no quota).
        """
        config = self.config
        attempt = 0  # retries that count against max_retries
        limited_since: float | None = None  # when this request got its first 429 with Retry-After
        while True:
            await self.limiter.acquire(tokens)
            self.report.requests += 1
            try:
                return await asyncio.wait_for(make_call(), timeout=config.timeout_s)
            except (openai.APIError, MalformedResponseError) as exc:
                failure = classify(exc, config.api_key_env, config.model, config.timeout_s, config.section)
            except asyncio.TimeoutError:
                failure = Failure(f"timed out after {config.timeout_s:g} s", retryable=True)
            if not failure.retryable:
                return failure
            delay = retry_delay(
                failure, attempt, config.backoff_base_s, config.backoff_max_s, config.max_retry_after_s, self._jitter
            )
            if is_rate_limit_wait(failure):
                now = time.monotonic()
                limited_since = now if limited_since is None else limited_since
                if now - limited_since + delay > config.max_rate_limit_wait_s:
                    return rate_limit_exhausted(failure, now - limited_since, delay, config.max_rate_limit_wait_s)
                self.limiter.pause(delay)
                self.report.rate_limit_retries += 1
                log.debug("rate limited, retry in %.2f s (not counted in max_retries): %s", delay, failure.detail)
            else:
                if attempt >= config.max_retries:
                    return failure
                attempt += 1
                log.debug("retry %d/%d in %.2f s after: %s", attempt, config.max_retries, delay, failure.detail)
            self.report.retries += 1
            if self.on_retry:
                self.on_retry()
            await asyncio.sleep(delay)

    async def chat(self, body: dict[str, Any]) -> dict[str, Any] | Failure:
        """One Chat Completions request (with retries); the raw response body, or the final `Failure`."""
        extra = {k: v for k, v in body.items() if k not in CHAT_PARAMS}

        async def attempt() -> dict[str, Any]:
            raw = await self.client.chat.completions.with_raw_response.create(
                model=body["model"],
                messages=body["messages"],
                temperature=body["temperature"],
                max_tokens=body["max_tokens"],
                extra_body=extra or None,
            )
            return decode_body(raw.http_response.text)

        return await self.call(attempt, estimate_tokens(body))
