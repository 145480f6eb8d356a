"""Ask a GPT-4-class judge about a benchmark's answers (LLaVA-Bench / LLaVA-Med visual-chat scoring).

The benchmark's `Judge` (from its domain) writes the request for each answer and aggregates the replies; this
module sends the requests through the client `generate` uses too (`llava_adapt.openai_client`: `max_concurrency`
in flight, client-side rate limits, retries that honour `Retry-After`, a per-request timeout) and keeps every reply
in the run's response cache, so re-scoring the same answers costs nothing. A request that fails for good leaves `None`
for its item (the domain counts it as a judge failure); a failure every request would share (bad key, unknown
model, no quota) stops with `JudgeError`.

What reaches the judge is what `Judge.messages` puts in a request: the item's question, reference and context
(e.g. a figure caption) and the model's answer. The API key is read from `$api_key_env` and given to the client
only.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llava_adapt.data.jsonl import write_jsonl
from llava_adapt.data.records import VQAItem
from llava_adapt.domain import Judge
from llava_adapt.errors import LlavaAdaptError
from llava_adapt.evaluate.config import JudgeConfig
from llava_adapt.openai_client.cache import ResponseCache, cache_key
from llava_adapt.openai_client.chat import CachedChat
from llava_adapt.openai_client.pricing import find_price
from llava_adapt.openai_client.reply import Rejected, response_text
from llava_adapt.openai_client.report import ClientReport
from llava_adapt.openai_client.retry import Failure, FatalRequestError
from llava_adapt.openai_client.transport import ClientConfigError, Transport, make_client


class JudgeError(LlavaAdaptError, RuntimeError):
    """The judge cannot be asked at all (no key, bad key, unknown model, no quota); the message says what to fix."""


@dataclass
class JudgeRun:
    """The judge's replies for one model's answers on one benchmark.

    Args:
        replies (`list[str | None]`): one per item, in order; `None` where no usable reply came.
        failures (`Counter[str]`): why replies are missing, by reason.
        report (`ClientReport`): requests, retries, cache hits, token usage and cost.
    """

    replies: list[str | None]
    failures: Counter[str] = field(default_factory=Counter)
    report: ClientReport | None = None

    def to_manifest(self) -> dict[str, Any]:
        """What the manifest records: counts, failures by reason, usage and cost."""
        info = self.report.to_manifest() if self.report else {}
        keep = ("model", "requests", "retries", "cache_hits", "usage", "cost_usd", "saved_by_cache_usd")
        return {**{k: info[k] for k in keep if k in info}, "replies": sum(r is not None for r in self.replies),
                "failures": dict(self.failures)}  # fmt: skip


def check_judge(config: JudgeConfig) -> None:
    """Fail early, before any answer is generated, when the judge's key is not set.

    Raises:
        JudgeError: `$api_key_env` is unset or empty (the message names the variable, never a value).
    """
    if not os.environ.get(config.api_key_env):
        raise JudgeError(
            f"evaluate.judge is set but the environment variable {config.api_key_env} is not. Export the judge's "
            f"key (export {config.api_key_env}=sk-...), name another variable with evaluate.judge.api_key_env, "
            f"{config.missing_key_hint()}. A server without authentication accepts any "
            f"value, e.g. {config.api_key_env}=EMPTY."
        )


def request_body(config: JudgeConfig, messages: list[dict[str, str]]) -> dict[str, Any]:
    """The Chat Completions request for one judgement (what is sent, hashed and cached)."""
    return {"model": config.model, "messages": messages, "temperature": config.temperature,
            "max_tokens": config.max_tokens}  # fmt: skip


def judge_answers(
    judge: Judge, items: Sequence[VQAItem], answers: Sequence[str], config: JudgeConfig, cache_dir: Path
) -> JudgeRun:
    """Ask the judge about every answer; cached replies are reused without a request.

    Args:
        judge (`Judge`): the benchmark's judge (request builder and scorer).
        items (`Sequence[VQAItem]`): the questions.
        answers (`Sequence[str]`): the model's answers, in the same order.
        config (`JudgeConfig`): the judge model and how to reach it.
        cache_dir (`Path`): the response cache folder (the run's `cache/`).

    Returns:
        The replies, in order, with failure counts and usage.

    Raises:
        JudgeError: no key, a bad key, an unknown model or endpoint, or no quota.
    """
    if len(items) != len(answers):
        raise ValueError(f"{len(items)} items but {len(answers)} answers")
    requests = [judge.messages(item, answer) for item, answer in zip(items, answers, strict=True)]
    return ask_judge(requests, config, cache_dir)


def ask_judge(requests: Sequence[list[dict[str, str]]], config: JudgeConfig, cache_dir: Path) -> JudgeRun:
    """Send Chat Completions requests to the judge model; cached replies are reused without a request.

    Args:
        requests (`Sequence[list[dict[str, str]]]`): the messages of each request.
        config (`JudgeConfig`): the judge model and how to reach it.
        cache_dir (`Path`): the response cache folder (the run's `cache/`).

    Returns:
        The reply texts, in order (`None` where none came), with failure counts and usage.

    Raises:
        JudgeError: no key, a bad key, an unknown model or endpoint, or no quota.
    """
    check_judge(config)
    try:
        client = make_client(config)
    except ClientConfigError as exc:
        raise JudgeError(str(exc)) from None
    report = ClientReport(model=config.model, price=find_price(config.model, config.prices))
    bodies = [request_body(config, messages) for messages in requests]
    with ResponseCache(cache_dir) as cache:
        try:
            responses = asyncio.run(_ask_all(client, config, report, cache, bodies))
        except FatalRequestError as exc:
            raise JudgeError(f"the judge (evaluate.judge) cannot be used: {exc}") from None
    run = JudgeRun(replies=[], report=report)
    for response in responses:
        if isinstance(response, Failure):
            run.replies.append(None)
            run.failures["request failed" + (" after retries" if response.retryable else "")] += 1
            continue
        text = response_text(response, config.section)
        if isinstance(text, Rejected):
            run.replies.append(None)
            run.failures[text.reason] += 1
        else:
            run.replies.append(text)
    return run


async def _ask_all(
    client: Any, config: JudgeConfig, report: ClientReport, cache: ResponseCache, bodies: list[dict[str, Any]]
) -> list[dict[str, Any] | Failure]:
    """Every request's response, at most `config.max_concurrency` in flight."""
    chat = CachedChat(Transport(client, config, report), cache)
    slots = asyncio.Semaphore(config.max_concurrency)

    async def ask(body: dict[str, Any]) -> dict[str, Any] | Failure:
        async with slots:
            return await chat.ask(body, cache_key(body))

    try:
        return await asyncio.gather(*(ask(body) for body in bodies))
    finally:
        await client.close()


def judgement_rows(items: Sequence[VQAItem], answers: Sequence[str], run: JudgeRun) -> list[dict[str, Any]]:
    """The rows of a `judgements.jsonl` file: id, question, reference, the model's answer and the judge's reply."""
    return [
        {"id": item.id, "question": item.question, "reference": item.answer, "prediction": answer, "reply": reply}
        for item, answer, reply in zip(items, answers, run.replies, strict=True)
    ]


def judge_benchmark(
    judge: Judge,
    items: Sequence[VQAItem],
    answers: Sequence[str],
    config: JudgeConfig,
    cache_dir: Path,
    out_file: Path,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Judge one model's answers on one benchmark, write the replies to `out_file` and score them.

    Args:
        judge (`Judge`): the benchmark's judge.
        items (`Sequence[VQAItem]`): the questions.
        answers (`Sequence[str]`): the model's answers, same order.
        config (`JudgeConfig`): the judge model and how to reach it.
        cache_dir (`Path`): the response cache folder.
        out_file (`Path`): where the per-item replies go (`judgements.jsonl`).

    Returns:
        `(metrics, manifest facts)`: the judge's metrics (from `judge.score`) and what to record about the run.
    """
    run = judge_answers(judge, items, answers, config, cache_dir)
    write_jsonl(out_file, judgement_rows(items, answers, run))
    return judge.score(items, run.replies), run.to_manifest()
