"""The `evaluate.judge:` section of a recipe: the GPT-4-class model that scores free-form answers (the shared
client settings, with the judge's defaults). Imports only pydantic."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from llava_adapt.openai_client.config import ClientConfig


class JudgeConfig(ClientConfig):
    """The model that judges benchmarks with a judged score (e.g. biomed's `llava_med_chat`), and how to reach it.

    LLaVA-Med judged with `gpt-4-0314` on Azure at temperature 0; that model is retired, so the default is
    `gpt-4o`. Scores from different judge models are not comparable: keep the judge fixed across the models you
    compare. Requests go through the same client, retries, rate limiting and response cache as `generate`
    (`llava_adapt.openai_client`, whose settings these are); the key is read from `$api_key_env` and never written
    anywhere.
    """

    section: ClassVar[str] = "evaluate.judge"

    temperature: float = Field(0.0, ge=0, le=2)  # LLaVA-Med: 0 (LLaVA-Bench: 0.2)
    max_tokens: int = Field(1024, ge=1)  # the scores line plus the judge's explanation
    max_concurrency: int = Field(4, ge=1)
    models: list[Literal["trained", "without_align", "baseline"]] | None = None  # which to judge; None = all scored

    def missing_key_hint(self) -> str:
        return "or remove evaluate.judge to score offline metrics only"
