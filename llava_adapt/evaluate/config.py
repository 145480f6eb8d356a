"""The `evaluate.judge:` section of a recipe: the GPT-4-class model that scores free-form answers. Imports only
pydantic."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from llava_adapt.generate.config import GenerateConfig, ModelPrice


class JudgeConfig(BaseModel):
    """The model that judges benchmarks with a judged score (e.g. biomed's `llava_med_chat`), and how to reach it.

    LLaVA-Med judged with `gpt-4-0314` on Azure at temperature 0; that model is retired, so the default is
    `gpt-4o`. Scores from different judge models are not comparable: keep the judge fixed across the models you
    compare. Requests go through the same client, retries, rate limiting and response cache as `generate`; the
    key is read from `$api_key_env` and never written anywhere.
    """

    model_config = ConfigDict(extra="forbid")

    model: str = "gpt-4o"  # with provider azure: the deployment name
    provider: Literal["openai", "azure"] = "openai"
    base_url: str | None = None  # an OpenAI-compatible server (vLLM, a proxy); with provider azure: the endpoint
    api_version: str | None = None  # Azure only (else $OPENAI_API_VERSION)
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = Field(0.0, ge=0, le=2)  # LLaVA-Med: 0 (LLaVA-Bench: 0.2)
    max_tokens: int = Field(1024, ge=1)  # the scores line plus the judge's explanation
    max_concurrency: int = Field(4, ge=1)
    requests_per_minute: float | None = Field(None, gt=0)
    tokens_per_minute: float | None = Field(None, gt=0)
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(5, ge=0)
    models: list[Literal["trained", "without_align", "baseline"]] | None = None  # which to judge; None = all scored
    prices: dict[str, ModelPrice] = Field(default_factory=dict)  # add or override entries of the price table

    def client_config(self) -> GenerateConfig:
        """The same settings in the shape the generation engine's client and transport take."""
        return GenerateConfig(
            backend="openai",
            **self.model_dump(
                include={
                    "model", "provider", "base_url", "api_version", "api_key_env", "temperature", "max_tokens",
                    "max_concurrency", "requests_per_minute", "tokens_per_minute", "timeout_s", "max_retries",
                    "prices",
                }
            ),
        )  # fmt: skip
