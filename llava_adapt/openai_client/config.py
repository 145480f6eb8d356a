"""The settings of the OpenAI-compatible client, shared by the recipe's `generate:` and `evaluate.judge:` sections
(each extends `ClientConfig` with its own defaults and keys). Imports only pydantic."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field


class ModelPrice(BaseModel):
    """The price of one model, in US dollars per million tokens (see the provider's pricing page)."""

    model_config = ConfigDict(extra="forbid")

    input_per_1m: float = Field(ge=0)
    output_per_1m: float = Field(ge=0)
    cached_input_per_1m: float | None = Field(None, ge=0)  # prompt tokens the provider served from its cache


class ClientConfig(BaseModel):
    """Which model to ask and how to reach it: server, key, concurrency, rate limits, timeouts, retries, prices.

    `provider: openai` talks to any OpenAI-compatible `base_url` (OpenAI, vLLM, a proxy); `provider: azure` to an
    Azure OpenAI endpoint. The key is read from `$api_key_env` and never written anywhere.
    """

    model_config = ConfigDict(extra="forbid")

    # The recipe section these settings come from, named in error messages (e.g. "set generate.api_key_env").
    section: ClassVar[str] = "client"

    model: str = "gpt-4o"  # with provider azure: the deployment name
    provider: Literal["openai", "azure"] = "openai"
    base_url: str | None = None  # an OpenAI-compatible server (vLLM, a proxy); with provider azure: the endpoint
    api_version: str | None = None  # Azure only (else $OPENAI_API_VERSION)
    api_key_env: str = "OPENAI_API_KEY"  # the environment variable holding the key; the key is never stored
    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int = Field(1024, ge=1)
    max_concurrency: int = Field(8, ge=1)  # requests in flight at once
    requests_per_minute: float | None = Field(None, gt=0)  # client-side limit; None = no limit
    tokens_per_minute: float | None = Field(None, gt=0)  # estimated as prompt chars / 4 + max_tokens per request
    timeout_s: float = Field(120.0, gt=0)  # per request
    max_retries: int = Field(5, ge=0)  # per request, on 429, 5xx, timeouts, connection errors, garbled replies
    backoff_base_s: float = Field(1.0, gt=0)  # exponential backoff: base * 2**attempt, with jitter ...
    backoff_max_s: float = Field(60.0, gt=0)  # ... capped here, unless the server sends Retry-After
    max_retry_after_s: float = Field(120.0, gt=0)  # longer Retry-After waits are capped to this
    # per request: 429s with Retry-After pause every request and are retried without using up max_retries, until
    # this many seconds after the request's first one (a wait that would end later rejects it, retryable)
    max_rate_limit_wait_s: float = Field(600.0, gt=0)
    prices: dict[str, ModelPrice] = Field(default_factory=dict)  # add or override entries of the price table

    def missing_key_hint(self) -> str:
        """What else the user can do when the key's variable is unset (after "export it")."""
        return f"or remove {self.section}"
