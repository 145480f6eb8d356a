"""Captions in, conversations (and rejects) out: the whole generation run, used by the stage and the CLI."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai

from llava_adapt.data.jsonl import RecordFileError, read_jsonl
from llava_adapt.data.records import CaptionRecord, RecordError
from llava_adapt.domain import Domain
from llava_adapt.errors import InputError
from llava_adapt.generate.batch import BatchRunner
from llava_adapt.generate.config import GenerateConfig
from llava_adapt.generate.jobs import Job, plan_jobs, request_body, user_message
from llava_adapt.generate.online import PreparedJob, finish_cached, finish_failure, run_online
from llava_adapt.generate.output import ResultWriter
from llava_adapt.generate.postprocess import Postprocessor
from llava_adapt.generate.progress import GenerateProgress
from llava_adapt.generate.prompts import select_prompt_types
from llava_adapt.generate.report import GenerateReport
from llava_adapt.openai_client.cache import ResponseCache, cache_key
from llava_adapt.openai_client.pricing import find_price
from llava_adapt.openai_client.transport import Transport, make_client
from llava_adapt.prompt_folder import PromptType, load_prompt_type

log = logging.getLogger("llava_adapt.generate")


def read_captions(path: str | Path, limit: int | None = None) -> list[CaptionRecord]:
    """Read caption records from a JSON Lines file.

    Args:
        path (`str | Path`): the file (`data/captions.jsonl` of a run, or any file of `CaptionRecord` rows).
        limit (`int`, *optional*): only the first `limit` records.

    Raises:
        RecordFileError: the file is missing or holds no record, a line is not UTF-8 JSON or not a valid record (a
            missing field, a field of the wrong JSON type), or an id repeats (names file:line).
    """
    path = Path(path)
    if not path.is_file():
        raise RecordFileError(f"captions file {path} does not exist")
    records: list[CaptionRecord] = []
    seen: dict[str, int] = {}
    for number, row in read_jsonl(path):
        try:
            record = CaptionRecord.from_dict(row)
        except RecordError as exc:
            raise RecordFileError(f"{path}:{number}: {exc} (a caption record is {{id, image, caption}})") from None
        if record.id in seen:
            raise RecordFileError(f"{path}:{number}: id {record.id!r} repeats line {seen[record.id]}")
        seen[record.id] = number
        records.append(record)
        if limit is not None and len(records) >= limit:
            break
    if not records:
        raise RecordFileError(
            f"captions file {path} holds no caption records; point it at the output of `prepare` (data/captions.jsonl)"
            " or a JSON Lines file of {id, image, caption}"
        )
    return records


def check_paths(captions: Path, out: Path, rejects: Path, cache_dir: Path) -> None:
    """Refuse outputs that would overwrite an input or each other (`--out` given the captions file, ...).

    Raises:
        InputError: two of the paths are the same file (the message names them).
    """
    paths = {"the captions file": captions, "the output": out, "the rejects file": rejects, "the cache": cache_dir}
    resolved = {name: path.resolve() for name, path in paths.items()}
    names = list(paths)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            same = resolved[first] == resolved[second]
            if not same and paths[first].exists() and paths[second].exists():
                same = os.path.samefile(paths[first], paths[second])
            if same:
                raise InputError(
                    f"{paths[second]} is {first} too: {second} must be another file (nothing was written)"
                )


def _bounded(jobs: list[Job], post: Postprocessor, max_caption_chars: int) -> list[Job]:
    """The pending jobs whose caption can be sent; the others are rejected (`empty caption`, `caption too long`)."""
    kept = []
    for job in jobs:
        caption = job.record.caption
        if not caption.strip():
            post.reject(job, "empty caption", "the record's caption is empty")
        elif len(caption) > max_caption_chars:
            post.reject(
                job,
                "caption too long",
                f"{len(caption)} characters, at most {max_caption_chars} (generate.max_caption_chars)",
            )
        else:
            kept.append(job)
    return kept


class _Ticker:
    """Redraws the progress bar at most every `interval` seconds (offline runs finish thousands of jobs per second)."""

    def __init__(self, progress: GenerateProgress, interval: float = 0.1) -> None:
        self.progress, self.interval, self._last = progress, interval, 0.0

    def __call__(self) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self.progress.update()


def _prepare(
    jobs: list[Job], domain: Domain, config: GenerateConfig, prompts: dict[str, PromptType]
) -> Iterator[PreparedJob]:
    for job in jobs:
        body = request_body(config, prompts[job.prompt_type], user_message(domain, job.record, job.prompt_type))
        yield job, body, cache_key(body, job.sample)


async def _run_openai(
    client: openai.AsyncOpenAI,
    pending: list[Job],
    domain: Domain,
    config: GenerateConfig,
    prompts: dict[str, PromptType],
    cache: ResponseCache,
    post: Postprocessor,
    progress: GenerateProgress,
) -> None:
    report = post.report
    tick = _Ticker(progress)
    try:
        transport = Transport(client, config, report, on_retry=tick)
        if not config.batch_api:
            await run_online(_prepare(pending, domain, config, prompts), transport, cache, post, on_done=tick)
            return
        keyed = [(job, key) for job, _, key in _prepare(pending, domain, config, prompts)]  # bodies not kept
        by_key = {key: job for job, key in keyed}
        todo = [key for key in by_key if key not in cache]
        reused = set(by_key).difference(todo)

        def body(key: str) -> dict[str, Any]:
            job = by_key[key]
            return request_body(config, prompts[job.prompt_type], user_message(domain, job.record, job.prompt_type))

        def status(line: str) -> None:
            progress.note = line
            progress.update()

        failures = await BatchRunner(transport, cache, on_status=status).run(todo, body)
        progress.note = ""
        for job, key in keyed:
            if key in failures:
                finish_failure(post, job, failures[key])
            elif key in reused:
                finish_cached(post, job, cache.get(key))
            else:
                post.response(job, cache.get(key))
            tick()
    finally:
        await client.close()


def generate_instructions(
    domain: Domain,
    captions: str | Path,
    out: str | Path,
    rejects: str | Path,
    cache_dir: str | Path,
    config: GenerateConfig,
    seed: int = 0,
    progress: bool = False,
) -> GenerateReport:
    """Generate conversations for the caption records in `captions`, resuming whatever an earlier run wrote.

    Each (record, prompt type, sample) job ends exactly once in `out` (a LLaVA conversation with id
    `record:prompt_type:sample`) or in `rejects` (with a reason). Rejects whose request failed after every retry
    are tried again by the next run; everything answered before is taken from the cache in `cache_dir`.

    Args:
        domain (`Domain`): the domain (prompts, context builder, allow-list, leak patterns, offline generator).
        captions (`str | Path`): caption records, JSON Lines.
        out (`str | Path`): the conversations file (appended to).
        rejects (`str | Path`): the rejects file (appended to).
        cache_dir (`str | Path`): the request cache folder (`backend: openai`; kept across runs).
        config (`GenerateConfig`): the `generate:` recipe section.
        seed (`int`, defaults to `0`): seeds the offline generator and the choice of description questions.
        progress (`bool`, defaults to `False`): draw a progress bar on stderr.

    Returns:
        The run's `GenerateReport`.

    Raises:
        RecordFileError: the captions file is malformed or empty (names file:line).
        InputError: an output path is the captions file or another output, or an existing output file is not one
            llava-adapt wrote (it is left untouched).
        PromptError: an unknown prompt type (lists the available ones) or a malformed prompt folder.
        MissingApiKeyError: `backend: openai` and the key's environment variable is unset (names it).
        FatalRequestError: the server refused the key, does not know the model, or the quota is exhausted.
    """
    check_paths(Path(captions), Path(out), Path(rejects), Path(cache_dir))
    types = select_prompt_types(domain, config.prompt_types)
    records = read_captions(captions, config.limit)
    jobs = list(plan_jobs(records, types, config.samples_per_record))
    online = config.backend == "openai"
    report = GenerateReport(
        backend=("openai-batch" if config.batch_api else "openai") if online else "offline",
        model=config.model if online else "",
        jobs=len(jobs),
        price=find_price(config.model, config.prices) if online else None,
        batch_discount=config.batch_discount,
    )
    prompts = {name: load_prompt_type(domain.prompts_dir, name) for name in types}
    client = make_client(config) if online else None  # a missing key fails here, before any file is touched
    with ResultWriter(out, rejects) as writer:
        if writer.retrying:
            log.info("generate: retrying %d requests that failed in an earlier run", writer.retrying)
        pending = [job for job in jobs if job.id not in writer.done]
        report.resumed = len(jobs) - len(pending)
        report.ok, report.rejected = writer.resumed_ok, writer.resumed_rejects.copy()
        post = Postprocessor(domain, prompts, writer, report, seed, config.max_turn_chars)
        pending = _bounded(pending, post, config.max_caption_chars)
        with GenerateProgress(report, enabled=progress) as bar:
            if not online:
                tick = _Ticker(bar)
                for job in pending:
                    post.offline(job)
                    tick()
            else:
                with ResponseCache(cache_dir) as cache:
                    asyncio.run(_run_openai(client, pending, domain, config, prompts, cache, post, bar))
    return report
