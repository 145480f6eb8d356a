"""The Batch API path: upload the requests as JSONL, poll, download, join on `custom_id`, resubmit failures.

Every request of the run that is not cached goes into one or more batch files (at most `batch_max_requests`
lines and 190 MB each; the API allows 50,000 and 200 MB). The `custom_id` of a line is its cache key, so results
land in the same cache as online answers and the rest of the run (parsing, filters, output) is shared. Lines that
fail (an error line, a non-200 status, or missing from the output of an expired batch) are resubmitted in a new
batch, up to `batch_max_rounds` submissions per run.

Submitted batches are recorded in the cache before anything else happens, so a run that is killed while a batch
is running collects that batch when it is run again, instead of submitting (and paying for) the requests twice.
The Batch API is OpenAI's; vLLM has no `/v1/batches` (use `vllm run-batch`, or the online path).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from llava_adapt.errors import LlavaAdaptError
from llava_adapt.openai_client.cache import ResponseCache
from llava_adapt.openai_client.retry import RETRYABLE_STATUS, Failure
from llava_adapt.openai_client.transport import Transport

ENDPOINT = "/v1/chat/completions"
MAX_FILE_BYTES = 190 * 2**20
TERMINAL = {"completed", "failed", "expired", "cancelled"}


class BatchError(LlavaAdaptError, RuntimeError):
    """A Batch API call failed for good (upload, create, poll or download)."""


def batch_lines(items: Iterable[tuple[str, dict[str, Any]]], max_requests: int) -> Iterator[list[bytes]]:
    """Group `(custom_id, body)` pairs into batch files of JSONL lines within the request and size limits.

    A generator: one file's lines are in memory at a time.
    """
    lines: list[bytes] = []
    size = 0
    for key, body in items:
        line = (json.dumps({"custom_id": key, "method": "POST", "url": ENDPOINT, "body": body}) + "\n").encode()
        if lines and (len(lines) >= max_requests or size + len(line) > MAX_FILE_BYTES):
            yield lines
            lines, size = [], 0
        lines.append(line)
        size += len(line)
    if lines:
        yield lines


def _line_failure(row: dict[str, Any]) -> Failure:
    response = row.get("response") or {}
    status = response.get("status_code")
    error = row.get("error") or (response.get("body") or {}).get("error") or {}
    message = error.get("message", "") if isinstance(error, dict) else str(error)
    if status is None:
        return Failure(f"batch error: {message or 'no response'}"[:300], retryable=True)
    retryable = status in RETRYABLE_STATUS or status >= 500
    return Failure(f"HTTP {status} in batch: {message}"[:300], retryable=retryable)


class BatchRunner:
    """Gets answers for requests through the Batch API into the cache.

    Args:
        transport (`Transport`): the client, with retries for each Batch API call.
        cache (`ResponseCache`): where answers (and the batch bookkeeping) go.
        on_status (`Callable[[str], None]`, *optional*): receives a one-line status while batches run.
    """

    def __init__(
        self, transport: Transport, cache: ResponseCache, on_status: Callable[[str], None] | None = None
    ) -> None:
        self.transport, self.cache = transport, cache
        self.config = transport.config
        self.on_status = on_status or (lambda _: None)

    async def _api(self, make_call: Callable[[], Any], what: str) -> Any:
        result = await self.transport.call(make_call)
        if isinstance(result, Failure):
            raise BatchError(f"Batch API: {what} failed: {result.detail}")
        return result

    async def _submit(self, lines: list[bytes], round_: int) -> str:
        client = self.transport.client
        data = b"".join(lines)
        uploaded = await self._api(
            lambda: client.files.create(file=("requests.jsonl", data, "application/jsonl"), purpose="batch"),
            "uploading the requests",
        )
        batch = await self._api(
            lambda: client.batches.create(
                input_file_id=uploaded.id, endpoint=ENDPOINT, completion_window=self.config.batch_completion_window
            ),
            "creating the batch",
        )
        self.cache.add_batch(batch.id, [json.loads(line)["custom_id"] for line in lines], round_)
        return batch.id

    async def _download(self, file_id: str | None) -> list[dict[str, Any]]:
        if not file_id:
            return []
        content = await self._api(lambda: self.transport.client.files.content(file_id), f"downloading {file_id}")
        return [json.loads(line) for line in content.text.splitlines() if line.strip()]

    async def _collect(self, batch_id: str) -> dict[str, Failure]:
        """Poll `batch_id` until it ends; cache its answers; return the failure of every other request in it."""
        client = self.transport.client
        while True:
            batch = await self._api(lambda: client.batches.retrieve(batch_id), f"polling batch {batch_id}")
            counts = batch.request_counts
            progress = f" {counts.completed + counts.failed}/{counts.total}" if counts else ""
            self.on_status(f"batch {batch_id}: {batch.status}{progress}")
            if batch.status in TERMINAL:
                break
            await asyncio.sleep(self.config.batch_poll_interval_s)
        rows = await self._download(batch.output_file_id) + await self._download(batch.error_file_id)
        failures: dict[str, Failure] = {}
        for row in rows:
            key = row.get("custom_id")
            response = row.get("response") or {}
            if response.get("status_code") == 200 and isinstance(response.get("body"), dict):
                body = response["body"]
                self.cache.put(key, body, self.config.model, source="batch")
                self.transport.report.batch.add(body)
            elif key:
                failures[key] = _line_failure(row)
        for key in self.cache.batch_keys(batch_id):
            if key not in self.cache and key not in failures:
                failures[key] = Failure(f"no result in batch {batch_id} (status {batch.status})", retryable=True)
        self.cache.close_batch(batch_id)
        return failures

    async def run(self, keys: list[str], body: Callable[[str], dict[str, Any]]) -> dict[str, Failure]:
        """Get answers for the requests `keys` into the cache.

        Batches left open by an interrupted run are collected first; what they answered is not submitted again.

        Args:
            keys (`list[str]`): cache keys of the requests to answer (no duplicates).
            body (`Callable[[str], dict]`): the request body of a key (built when its batch file is written, so
                that a 600K-request run never holds every body in memory).

        Returns:
            The failure of each request that has no answer at the end (after `batch_max_rounds` submissions).
        """
        failures: dict[str, Failure] = {}
        rounds: dict[str, int] = {}
        round_ = 0
        open_batches = [batch_id for batch_id, _ in self.cache.open_batches()]
        while True:
            for batch_id in open_batches:
                failures.update(await self._collect(batch_id))
            todo = [
                key
                for key in keys
                if key not in self.cache
                and rounds.get(key, 0) < self.config.batch_max_rounds
                and (key not in failures or failures[key].retryable)
            ]
            if not todo:
                break
            round_ += 1
            open_batches = []
            for lines in batch_lines(((key, body(key)) for key in todo), self.config.batch_max_requests):
                open_batches.append(await self._submit(lines, round_))
            for key in todo:
                rounds[key] = rounds.get(key, 0) + 1
        return {key: failures[key] for key in keys if key not in self.cache and key in failures}
