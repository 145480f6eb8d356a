"""Cache-first Chat Completions: a request whose answer is in the response cache costs nothing, and two callers
asking the same request at once share one request."""

from __future__ import annotations

import asyncio
from typing import Any

from llava_adapt.openai_client.cache import ResponseCache
from llava_adapt.openai_client.retry import Failure
from llava_adapt.openai_client.transport import Transport


class CachedChat:
    """Asks through `transport`, answering from `cache` first and storing every new answer in it at once.

    The tally goes to `transport.report`: a cached (or shared) answer counts as a cache hit and its tokens as
    reused; a new answer's tokens as online.

    Args:
        transport (`Transport`): sends the requests (retries, rate limits, timeout).
        cache (`ResponseCache`): the response cache.
    """

    def __init__(self, transport: Transport, cache: ResponseCache) -> None:
        self.transport, self.cache = transport, cache
        self._in_flight: dict[str, asyncio.Future[dict[str, Any] | Failure]] = {}

    def _hit(self, response: dict[str, Any]) -> dict[str, Any]:
        self.transport.report.cache_hits += 1
        self.transport.report.reused.add(response)
        return response

    async def ask(self, body: dict[str, Any], key: str) -> dict[str, Any] | Failure:
        """The response to one request: from the cache, from the same request already in flight, or sent now.

        Args:
            body (`dict`): the Chat Completions request body.
            key (`str`): its cache key (`llava_adapt.openai_client.cache.cache_key`).

        Returns:
            The raw response body, or the final `Failure` of the request (not cached: a later run asks again).

        Raises:
            FatalRequestError: a failure every request would share (bad key, unknown model, no quota).
        """
        cached = self.cache.get(key)
        if cached is not None:
            return self._hit(cached)
        if key in self._in_flight:
            shared = await self._in_flight[key]
            return shared if isinstance(shared, Failure) else self._hit(shared)
        future: asyncio.Future[dict[str, Any] | Failure] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            result = await self.transport.chat(body)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark it retrieved: the caller that raised reports it
            raise
        finally:
            del self._in_flight[key]
        future.set_result(result)
        if not isinstance(result, Failure):
            self.cache.put(key, result, self.transport.config.model)
            self.transport.report.online.add(result)
        return result
