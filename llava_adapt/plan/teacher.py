"""What the `generate` stage will ask of its teacher: requests, tokens and cost.

One request per caption record, prompt type and sample (`plan_jobs`). A request's input is the prompt type's system
message and few-shot pairs plus the record's user message (measured on the run's captions when `prepare` completed,
else estimated by the few-shot contexts, which the domain writes the way its `build_context` does); its output is
estimated by the few-shot answers the teacher imitates, at most `generate.max_tokens`. Tokens are counted as
ceil(characters / 4), the rule the stage's own token limiter uses (`estimate_tokens`), not a tokenizer. The cost uses
the price table (`generate.prices` first) with the Batch API discount when `batch_api` is on, and no prompt caching
(an upper bound). The offline generator sends nothing and costs nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from llava_adapt.data.jsonl import read_jsonl
from llava_adapt.data.records import CaptionRecord
from llava_adapt.domain import Domain
from llava_adapt.generate.config import GenerateConfig
from llava_adapt.generate.jobs import user_message
from llava_adapt.generate.prompts import select_prompt_types
from llava_adapt.openai_client.pricing import Usage, find_price
from llava_adapt.prompt_folder import PromptType, load_prompt_type

TOKEN_RULE = "ceil(characters / 4), as generate's token limiter counts"


@dataclass(frozen=True)
class TeacherPlan:
    """The teacher requests of a `generate` stage.

    Args:
        backend (`str`): `"openai"` or `"offline"`.
        model (`str`): the teacher model (`""` offline).
        prompt_types (`list[str]`): the prompt types asked for each record.
        requests (`int`, *optional*): requests in all; `None` while the captions are unknown.
        requests_per_1000_captions (`int`): requests per 1,000 caption records.
        input_tokens_per_request (`float`): mean input tokens of one request.
        output_tokens_per_request (`float`): mean expected output tokens of one request.
        cost_per_1000_captions_usd (`float`, *optional*): dollars per 1,000 caption records; `None` without a price.
        measured_on (`str`): what the user messages were measured on.
        captions (`int`, *optional*): the caption records sent (after `generate.limit`).
    """

    backend: str
    model: str
    prompt_types: list[str]
    requests: int | None
    requests_per_1000_captions: int
    input_tokens_per_request: float
    output_tokens_per_request: float
    cost_per_1000_captions_usd: float | None
    measured_on: str
    captions: int | None

    def _scale(self, value: float | None) -> float | None:
        if value is None or self.captions is None:
            return None
        return value * self.captions / 1000

    @property
    def input_tokens(self) -> int | None:
        return None if self.requests is None else round(self.requests * self.input_tokens_per_request)

    @property
    def output_tokens(self) -> int | None:
        return None if self.requests is None else round(self.requests * self.output_tokens_per_request)

    @property
    def cost_usd(self) -> float | None:
        return self._scale(self.cost_per_1000_captions_usd)


def _tokens(chars: float) -> int:
    return math.ceil(chars / 4)


def _mean(values: Sequence[int]) -> float:
    return sum(values) / len(values) if values else 0.0


def _user_chars(domain: Domain, prompt: PromptType, records: list[CaptionRecord] | None) -> float:
    """Mean characters of a record's user message: measured on `records`, else the few-shot contexts'."""
    if records:
        return _mean([len(user_message(domain, record, prompt.name)) for record in records])
    return _mean([len(shot.context) for shot in prompt.examples])


def read_records(path: Path, limit: int | None) -> list[CaptionRecord]:
    """The caption records of `path` (the first `limit`)."""
    records = []
    for _, row in read_jsonl(path):
        records.append(CaptionRecord.from_dict(row))
        if limit is not None and len(records) >= limit:
            break
    return records


def plan_teacher(
    domain: Domain, config: GenerateConfig, captions: int | None, captions_file: Path | None = None
) -> TeacherPlan:
    """Requests, tokens and cost of generating conversations for `captions` caption records.

    Args:
        domain (`Domain`): the domain (prompt types, context builder).
        config (`GenerateConfig`): the recipe's `generate:` section.
        captions (`int`, *optional*): the caption records `generate` reads; `None` when unknown.
        captions_file (`Path`, *optional*): `prepare`'s captions, to measure the user messages on.

    Raises:
        PromptError: an unknown prompt type or a malformed prompt folder.
    """
    types = select_prompt_types(domain, config.prompt_types)
    sent = captions if captions is None or config.limit is None else min(captions, config.limit)
    per_record = len(types) * config.samples_per_record
    requests = None if sent is None else sent * per_record
    if config.backend == "offline":
        return TeacherPlan("offline", "", types, requests, 1000 * per_record, 0.0, 0.0, 0.0, "", sent)
    records = read_records(captions_file, config.limit) if captions_file else None
    inputs, outputs = [], []
    for name in types:
        prompt = load_prompt_type(domain.prompts_dir, name)
        fixed = sum(len(message["content"]) for message in prompt.messages(""))
        inputs.append(_tokens(fixed + _user_chars(domain, prompt, records)))
        answer = _tokens(_mean([len(shot.response) for shot in prompt.examples])) or config.max_tokens
        outputs.append(min(answer, config.max_tokens))
    per_1000 = Usage(
        prompt_tokens=1000 * config.samples_per_record * sum(inputs),
        completion_tokens=1000 * config.samples_per_record * sum(outputs),
    )
    factor = config.batch_discount if config.batch_api else 1.0
    return TeacherPlan(
        backend="openai",
        model=config.model,
        prompt_types=types,
        requests=requests,
        requests_per_1000_captions=1000 * per_record,
        input_tokens_per_request=_mean(inputs),
        output_tokens_per_request=_mean(outputs),
        cost_per_1000_captions_usd=per_1000.cost(find_price(config.model, config.prices), factor),
        measured_on="the run's captions" if records else "the few-shot contexts",
        captions=sent,
    )
