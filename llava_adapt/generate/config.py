"""The `generate:` section of a recipe: the shared client settings (`llava_adapt.openai_client.config`) and the
generation engine's own. Imports only pydantic."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from llava_adapt.openai_client.config import ClientConfig


class GenerateConfig(ClientConfig):
    """How captions become stage-2 conversations.

    `backend: offline` uses the domain's deterministic templates (no network); `backend: openai` calls a
    GPT-4-class model through the openai client (any OpenAI-compatible `base_url`, or Azure with
    `provider: azure`). Answered requests are cached in the run's `cache/` folder, so a rerun pays for nothing
    twice.
    """

    section: ClassVar[str] = "generate"

    backend: Literal["offline", "openai"] = "openai"
    prompt_types: list[str] | None = None  # None = every prompt type the domain has
    samples_per_record: int = Field(1, ge=1)  # conversations per caption record and prompt type
    temperature: float = Field(0.7, ge=0, le=2)
    extra_body: dict[str, Any] = Field(default_factory=dict)  # more request parameters (top_p, seed, ...)
    batch_api: bool = False  # OpenAI Batch API: half price, results within `batch_completion_window`
    batch_max_requests: int = Field(50_000, ge=1)  # per uploaded file (the API's limit is 50,000 and 200 MB)
    batch_poll_interval_s: float = Field(30.0, gt=0)
    batch_max_rounds: int = Field(3, ge=1)  # submissions per request: failed lines are resubmitted
    batch_completion_window: str = "24h"
    batch_discount: float = Field(0.5, ge=0, le=1)  # Batch API price = this x the online price
    limit: int | None = Field(None, ge=1)  # only the first N records (a cheap trial run)
    # A caption longer than this is rejected ("caption too long", counted) instead of sent: a runaway caption (a
    # whole article pasted in) would cost its length in tokens and overflow the teacher's context. Figure captions
    # and report impressions are far shorter.
    max_caption_chars: int = Field(8000, ge=1)
    # A conversation turn longer than this is rejected ("turn too long"): a teacher that runs away, or an offline
    # generator's bug, never reaches training, where it would only be cut at max_length.
    max_turn_chars: int = Field(8000, ge=1)

    def missing_key_hint(self) -> str:
        return "or use the offline generator (generate.backend=offline, or --offline)"
