"""Token usage and what it cost.

The built-in price table (US dollars per million tokens, OpenAI list prices for online calls; the Batch API is
billed at `batch_discount` times these) is a default, not a source of truth: prices change, and self-hosted
servers cost nothing per token. Override or extend it in the recipe::

    generate:
      prices:
        my-finetuned-gpt: {input_per_1m: 3.0, output_per_1m: 12.0}

A model without a price (exact name, else the longest table entry its name starts with, so that
`gpt-4o-2024-08-06` is priced as `gpt-4o`) is reported with unknown cost rather than a wrong one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llava_adapt.openai_client.config import ModelPrice

DEFAULT_PRICES: dict[str, ModelPrice] = {
    "gpt-4o": ModelPrice(input_per_1m=2.50, output_per_1m=10.00, cached_input_per_1m=1.25),
    "gpt-4o-mini": ModelPrice(input_per_1m=0.15, output_per_1m=0.60, cached_input_per_1m=0.075),
    "gpt-4.1": ModelPrice(input_per_1m=2.00, output_per_1m=8.00, cached_input_per_1m=0.50),
    "gpt-4.1-mini": ModelPrice(input_per_1m=0.40, output_per_1m=1.60, cached_input_per_1m=0.10),
    "gpt-4.1-nano": ModelPrice(input_per_1m=0.10, output_per_1m=0.40, cached_input_per_1m=0.025),
    "gpt-4-turbo": ModelPrice(input_per_1m=10.00, output_per_1m=30.00),
    "gpt-4": ModelPrice(input_per_1m=30.00, output_per_1m=60.00),
    "gpt-3.5-turbo": ModelPrice(input_per_1m=0.50, output_per_1m=1.50),
}


def find_price(model: str, overrides: Mapping[str, ModelPrice] | None = None) -> ModelPrice | None:
    """The price of `model`: `overrides` first, then the built-in table; exact name, else longest prefix."""
    table = {**DEFAULT_PRICES, **(overrides or {})}
    if model in table:
        return table[model]
    prefixes = [name for name in table if model.startswith(name)]
    return table[max(prefixes, key=len)] if prefixes else None


@dataclass
class Usage:
    """Token counts summed over responses."""

    responses: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0

    def add(self, response: Mapping[str, Any]) -> None:
        """Add the `usage` block of one Chat Completions response (missing fields count as zero)."""
        usage = response.get("usage") or {}
        self.responses += 1
        self.prompt_tokens += int(usage.get("prompt_tokens") or 0)
        self.completion_tokens += int(usage.get("completion_tokens") or 0)
        details = usage.get("prompt_tokens_details") or {}
        self.cached_prompt_tokens += int(details.get("cached_tokens") or 0)

    def cost(self, price: ModelPrice | None, factor: float = 1.0) -> float | None:
        """Dollars for these tokens at `price` times `factor` (e.g. the batch discount); `None` without a price."""
        if price is None:
            return None
        cached_rate = price.cached_input_per_1m if price.cached_input_per_1m is not None else price.input_per_1m
        fresh_prompt = self.prompt_tokens - self.cached_prompt_tokens
        dollars = (
            fresh_prompt * price.input_per_1m
            + self.cached_prompt_tokens * cached_rate
            + self.completion_tokens * price.output_per_1m
        ) / 1e6
        return dollars * factor

    def to_dict(self) -> dict[str, int]:
        return {
            "responses": self.responses,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_prompt_tokens": self.cached_prompt_tokens,
        }
