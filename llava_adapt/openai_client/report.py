"""The running tally of the requests one client sent: attempts, retries, cache hits, token usage and cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llava_adapt.openai_client.config import ModelPrice
from llava_adapt.openai_client.pricing import Usage


@dataclass(kw_only=True)
class ClientReport:
    """Requests, retries, cache hits, usage and cost of one run of the client.

    Args:
        model (`str`, defaults to `""`): the model asked.
        price (`ModelPrice | None`, defaults to `None`): its price, `None` when unknown.
    """

    model: str = ""
    price: ModelPrice | None = None
    requests: int = 0  # HTTP requests sent by this run (retries included)
    retries: int = 0  # rate-limit retries included
    rate_limit_retries: int = 0  # retries after a 429 with Retry-After (they do not use up max_retries)
    cache_hits: int = 0  # answers taken from the cache instead of a request
    online: Usage = field(default_factory=Usage)  # responses paid for by this run, online
    reused: Usage = field(default_factory=Usage)  # responses reused from the cache (paid for earlier)

    def cost(self) -> float | None:
        """Dollars spent by this run (`None` when the model has no price)."""
        return self.online.cost(self.price)

    def saved(self) -> float | None:
        """Dollars not spent again thanks to the cache (at online prices)."""
        return self.reused.cost(self.price)

    def to_manifest(self) -> dict[str, Any]:
        """What the manifest records about the requests."""
        cost, saved = self.cost(), self.saved()
        return {
            "model": self.model,
            "requests": self.requests,
            "retries": self.retries,
            "rate_limit_retries": self.rate_limit_retries,
            "cache_hits": self.cache_hits,
            "usage": {"online": self.online.to_dict(), "reused": self.reused.to_dict()},
            "cost_usd": None if cost is None else round(cost, 6),
            "saved_by_cache_usd": None if saved is None else round(saved, 6),
        }
