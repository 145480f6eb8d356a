"""The online path: one Chat Completions request per job, `max_concurrency` at a time, cache first.

A fixed pool of `max_concurrency` workers pulls jobs from one iterator, so no more requests are ever in flight
than that (and a 600K-job run holds `max_concurrency` tasks, not 600K). A job whose request is in the cache is
finished from it without a request; two jobs with the same request in one run share one request
(`llava_adapt.openai_client.chat.CachedChat`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from llava_adapt.generate.jobs import Job
from llava_adapt.generate.postprocess import Postprocessor
from llava_adapt.openai_client.cache import ResponseCache
from llava_adapt.openai_client.chat import CachedChat
from llava_adapt.openai_client.retry import REQUEST_FAILED, RETRIES_EXHAUSTED, Failure
from llava_adapt.openai_client.transport import Transport

PreparedJob = tuple[Job, dict[str, Any], str]  # the job, its request body, its cache key


def finish_failure(post: Postprocessor, job: Job, failure: Failure) -> None:
    """Reject `job` because its request failed (retryable failures are tried again by the next run)."""
    reason = RETRIES_EXHAUSTED if failure.retryable else REQUEST_FAILED
    post.reject(job, reason, failure.detail, retryable=failure.retryable)


def finish_cached(post: Postprocessor, job: Job, response: dict[str, Any]) -> None:
    """Finish `job` from a response that an earlier request paid for."""
    post.report.cache_hits += 1
    post.report.reused.add(response)
    post.response(job, response)


async def run_online(
    jobs: Iterable[PreparedJob],
    transport: Transport,
    cache: ResponseCache,
    post: Postprocessor,
    on_done: Callable[[], None] | None = None,
) -> None:
    """Finish every job, sending the requests that are not cached.

    Args:
        jobs (`Iterable[tuple[Job, dict, str]]`): jobs with their request bodies and cache keys.
        transport (`Transport`): sends requests (retries, rate limit, timeout).
        cache (`ResponseCache`): answered requests.
        post (`Postprocessor`): writes the results.
        on_done (`Callable[[], None]`, *optional*): called after each finished job (progress bar).

    Raises:
        FatalRequestError: from the first request that hit one; the other workers are cancelled.
    """
    queue = iter(jobs)
    chat = CachedChat(transport, cache)

    async def worker() -> None:
        for job, body, key in queue:
            result = await chat.ask(body, key)
            if isinstance(result, Failure):
                finish_failure(post, job, result)
            else:
                post.response(job, result)
            if on_done:
                on_done()

    tasks = [asyncio.ensure_future(worker()) for _ in range(transport.config.max_concurrency)]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if task.exception() is not None:
                raise task.exception()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
