"""One place where every job ends: a conversation in the output, or a reject with its reason.

The online path, the Batch API path and the offline generator all finish their jobs here, so validation, the leak
and refusal filters, the `<image>` placement and the output format are the same whatever produced the text.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import Any

from llava_adapt.data.records import Conversation
from llava_adapt.domain import Domain
from llava_adapt.generate.filters import TextFilter, leak_filter, refusal_filter
from llava_adapt.generate.jobs import Job
from llava_adapt.generate.output import ResultWriter
from llava_adapt.generate.parse import check_turns, finish_turns, response_turns
from llava_adapt.generate.report import GenerateReport
from llava_adapt.openai_client.reply import Rejected, response_text
from llava_adapt.prompt_folder import PromptType, load_leak_file


class Postprocessor:
    """Turns responses (or offline turns) into written conversations or rejects, and keeps the tally.

    Args:
        domain (`Domain`): the domain (its leak patterns and offline generator).
        prompts (`Mapping[str, PromptType]`): the loaded prompt types, by name.
        writer (`ResultWriter`): where results go.
        report (`GenerateReport`): the tally to update.
        seed (`int`, defaults to `0`): seeds each job's random choices (`random.Random(f"{seed}:{job.id}")`).
        max_turn_chars (`int`, *optional*): a longer turn rejects the conversation (`"turn too long"`).
    """

    def __init__(
        self,
        domain: Domain,
        prompts: Mapping[str, PromptType],
        writer: ResultWriter,
        report: GenerateReport,
        seed: int = 0,
        max_turn_chars: int | None = None,
    ) -> None:
        self.domain, self.prompts, self.writer, self.report, self.seed = domain, prompts, writer, report, seed
        self.max_turn_chars = max_turn_chars
        self.leak: TextFilter = leak_filter(domain.leak_patterns, load_leak_file(domain.prompts_dir))
        self.refusal: TextFilter = refusal_filter()

    def rng(self, job: Job) -> random.Random:
        """The job's own random generator: the same job makes the same choices in every run."""
        return random.Random(f"{self.seed}:{job.id}")

    def _write(self, job: Job, turns: list[dict[str, str]]) -> None:
        self.writer.write(Conversation(id=job.id, image=job.record.image, conversations=turns, source=job.prompt_type))
        self.report.ok += 1

    def reject(
        self, job: Job, reason: str, detail: str = "", retryable: bool = False, text: str | None = None
    ) -> None:
        """Write a reject for `job` and count it under `reason`."""
        self.writer.reject(
            job.id,
            job.record.id,
            job.prompt_type,
            job.record.image,
            reason,
            detail,
            retryable=retryable,
            response=text,
        )
        self.report.rejected[reason] += 1

    def response(self, job: Job, response: dict[str, Any]) -> None:
        """Finish `job` from a Chat Completions response body."""
        result = response_turns(
            response, self.prompts[job.prompt_type], self.rng(job), self.leak, self.refusal, self.max_turn_chars
        )
        if isinstance(result, Rejected):
            text = response_text(response)
            raw = text if isinstance(text, str) else json.dumps(response, ensure_ascii=False)[:2000]
            self.reject(job, result.reason, result.detail, text=raw)
        else:
            self._write(job, result)

    def offline(self, job: Job) -> None:
        """Finish `job` with the domain's offline generator (no network)."""
        try:
            turns = self.domain.offline_generator(job.record, job.prompt_type, self.rng(job))
        except Exception as exc:  # a plugin bug on one record is counted and kept aside, not fatal for the rest
            self.reject(job, "offline generator error", f"{type(exc).__name__}: {exc}")
            return
        result = check_turns(turns)
        if not isinstance(result, Rejected):
            result = finish_turns(result, self.leak, self.refusal, self.max_turn_chars)
        if isinstance(result, Rejected):
            self.reject(job, result.reason, result.detail, text=json.dumps(turns, ensure_ascii=False, default=str))
        else:
            self._write(job, result)
