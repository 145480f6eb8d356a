"""Jobs (one conversation to generate) and the exact request each one sends.

Privacy lives here: the only view of a record a prompt is ever built from is `prompt_record(record, fields)`,
which keeps the caption and the allow-listed context keys and nothing else (no labels, no other context keys, not
even the id or the image path, which can carry identifiers such as a DICOM file name).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from llava_adapt.data.records import CaptionRecord
from llava_adapt.domain import Domain
from llava_adapt.generate.config import GenerateConfig
from llava_adapt.prompt_folder import PromptType


@dataclass(frozen=True)
class Job:
    """One conversation to generate: a record, a prompt type, and which sample of it.

    Args:
        record (`CaptionRecord`): the caption record.
        prompt_type (`str`): the prompt type.
        sample (`int`): 0 for the first conversation of this record and type, 1 for the second, ...
    """

    record: CaptionRecord
    prompt_type: str
    sample: int = 0

    @property
    def id(self) -> str:
        """The id of the output conversation (or of its reject): `record:prompt_type:sample`, stable and unique."""
        return f"{self.record.id}:{self.prompt_type}:{self.sample}"


def plan_jobs(records: Iterable[CaptionRecord], prompt_types: list[str], samples: int) -> Iterator[Job]:
    """Every (record, prompt type, sample) combination, record by record."""
    for record in records:
        for prompt_type in prompt_types:
            for sample in range(samples):
                yield Job(record, prompt_type, sample)


def prompt_record(record: CaptionRecord, fields: Iterable[str]) -> CaptionRecord:
    """The view of `record` a prompt may be built from: the caption and the context keys in `fields`, nothing else.

    Args:
        record (`CaptionRecord`): the full record (labels and all context stay local).
        fields (`Iterable[str]`): the domain's allow-list (`Domain.context_fields`).
    """
    allowed = set(fields)
    context = {key: value for key, value in record.context.items() if key in allowed}
    return CaptionRecord(id="", image="", caption=record.caption, context=context, labels={})


def user_message(domain: Domain, record: CaptionRecord, prompt_type: str | None = None) -> str:
    """The user message for `record`: the domain's `build_context` applied to the allow-listed view only.

    Args:
        domain (`Domain`): the domain (its context builder and allow-lists).
        record (`CaptionRecord`): the full record.
        prompt_type (`str`, *optional*): the prompt type; a type with its own allow-list
            (`Domain.prompt_context_fields`) sees only those context keys.
    """
    return domain.build_context(prompt_record(record, domain.fields_for(prompt_type)))


def request_body(config: GenerateConfig, prompt: PromptType, message: str) -> dict[str, Any]:
    """The Chat Completions request body for one user message (what is sent, hashed and cached)."""
    body: dict[str, Any] = {
        "model": config.model,
        "messages": prompt.messages(message),
        "temperature": config.temperature,
        "max_tokens": config.max_tokens,
    }
    body.update(config.extra_body)
    return body
