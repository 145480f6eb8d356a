"""The `generate:` section of a recipe. Imports only pydantic."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ModelPrice(BaseModel):
    """The price of one model, in US dollars per million tokens (see the provider's pricing page)."""

    model_config = ConfigDict(extra="forbid")

    input_per_1m: float = Field(ge=0)
    output_per_1m: float = Field(ge=0)
    cached_input_per_1m: float | None = Field(None, ge=0)  # prompt tokens the provider served from its cache


class GenerateConfig(BaseModel):
    """How captions become stage-2 conversations.

    `backend: offline` uses the domain's deterministic templates (no network); `backend: openai` calls a
    GPT-4-class model through the openai client (any OpenAI-compatible `base_url`, or Azure with
    `provider: azure`). Answered requests are cached in the run's `cache/` folder, so a rerun pays for nothing
    twice.
    """

    model_config = ConfigDict(extra="forbid")

    backend: Literal["offline", "openai"] = "openai"
    prompt_types: list[str] | None = None  # None = every prompt type the domain has
    samples_per_record: int = Field(1, ge=1)  # conversations per caption record and prompt type
    model: str = "gpt-4o"  # with provider azure: the deployment name
    provider: Literal["openai", "azure"] = "openai"
    base_url: str | None = None  # an OpenAI-compatible server (vLLM, a proxy); with provider azure: the endpoint
    api_version: str | None = None  # Azure only (else $OPENAI_API_VERSION)
    api_key_env: str = "OPENAI_API_KEY"  # the environment variable holding the key; the key is never stored
    temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: int = Field(1024, ge=1)
    extra_body: dict[str, Any] = Field(default_factory=dict)  # more request parameters (top_p, seed, ...)
    max_concurrency: int = Field(8, ge=1)  # requests in flight at once
    requests_per_minute: float | None = Field(None, gt=0)  # client-side limit; None = no limit
    tokens_per_minute: float | None = Field(None, gt=0)  # estimated as prompt chars / 4 + max_tokens per request
    timeout_s: float = Field(120.0, gt=0)  # per request
    max_retries: int = Field(5, ge=0)  # per request, on 429, 5xx, timeouts, connection errors, garbled replies
    backoff_base_s: float = Field(1.0, gt=0)  # exponential backoff: base * 2**attempt, with jitter ...
    backoff_max_s: float = Field(60.0, gt=0)  # ... capped here, unless the server sends Retry-After
    max_retry_after_s: float = Field(120.0, gt=0)  # longer Retry-After waits are capped to this
    batch_api: bool = False  # OpenAI Batch API: half price, results within `batch_completion_window`
    batch_max_requests: int = Field(50_000, ge=1)  # per uploaded file (the API's limit is 50,000 and 200 MB)
    batch_poll_interval_s: float = Field(30.0, gt=0)
    batch_max_rounds: int = Field(3, ge=1)  # submissions per request: failed lines are resubmitted
    batch_completion_window: str = "24h"
    batch_discount: float = Field(0.5, ge=0, le=1)  # Batch API price = this x the online price
    prices: dict[str, ModelPrice] = Field(default_factory=dict)  # add or override entries of the price table
    limit: int | None = Field(None, ge=1)  # only the first N records (a cheap trial run)
    # A caption longer than this is rejected ("caption too long", counted) instead of sent: a runaway caption (a
    # whole article pasted in) would cost its length in tokens and overflow the teacher's context. Figure captions
    # and report impressions are far shorter.
    max_caption_chars: int = Field(8000, ge=1)
    # A conversation turn longer than this is rejected ("turn too long"): a teacher that runs away, or an offline
    # generator's bug, never reaches training, where it would only be cut at max_length.
    max_turn_chars: int = Field(8000, ge=1)
    # per request: 429s with Retry-After pause every request and are retried without using up max_retries, until
    # this many seconds after the request's first one (a wait that would end later rejects it, retryable)
    max_rate_limit_wait_s: float = Field(600.0, gt=0)
