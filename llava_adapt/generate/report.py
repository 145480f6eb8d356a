"""The running tally of a generation run, and its summary for the console and the manifest."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llava_adapt.openai_client.pricing import Usage
from llava_adapt.openai_client.report import ClientReport
from llava_adapt.openai_client.retry import RETRIES_EXHAUSTED


@dataclass(kw_only=True)
class GenerateReport(ClientReport):
    """Counts, usage and cost of one generation run: the client's tally (`ClientReport`: requests, retries, cache
    hits, online and reused usage) and the generation's own.

    Args:
        backend (`str`): `"offline"`, `"openai"` or `"openai-batch"`.
        model (`str`): the teacher model (`""` offline).
        jobs (`int`): conversations asked for (records x prompt types x samples).
        price (`ModelPrice | None`): the model's price, `None` when unknown or offline.
        batch_discount (`float`): price factor of Batch API responses.
    """

    backend: str
    jobs: int
    batch_discount: float = 0.5
    resumed: int = 0  # jobs already done by an earlier run (in the output or the rejects)
    ok: int = 0  # conversations in the output file (earlier runs included)
    rejected: Counter[str] = field(default_factory=Counter)  # rejects by reason (earlier runs included)
    batch: Usage = field(default_factory=Usage)  # responses paid for by this run, Batch API

    @property
    def done(self) -> int:
        return self.ok + sum(self.rejected.values())

    @property
    def incomplete(self) -> int:
        """Jobs whose requests failed after every retry: a rerun tries them again."""
        return self.rejected.get(RETRIES_EXHAUSTED, 0)

    def cost(self) -> float | None:
        """Dollars spent by this run (`None` when the model has no price)."""
        online = self.online.cost(self.price)
        batch = self.batch.cost(self.price, self.batch_discount)
        return None if online is None or batch is None else online + batch

    def to_manifest(self) -> dict[str, Any]:
        """What the manifest records about the run: the generation's counts, then the client's tally (its usage
        with the Batch API's responses too; its cost including them)."""
        client = super().to_manifest()
        online, reused = client["usage"]["online"], client["usage"]["reused"]
        client["usage"] = {"online": online, "batch": self.batch.to_dict(), "reused": reused}
        counts = {"ok": self.ok, "rejected": dict(self.rejected), "resumed": self.resumed}
        return {"backend": self.backend, "model": self.model, "jobs": self.jobs, **counts, **client}

    def summary(self) -> str:
        """A few lines for the console."""
        rejected = ", ".join(f"{reason}: {n}" for reason, n in sorted(self.rejected.items())) or "none"
        lines = [
            f"generate ({self.backend}{', ' + self.model if self.model else ''}): {self.ok} conversations, "
            f"{sum(self.rejected.values())} rejected ({rejected}), {self.jobs} jobs"
            + (f", {self.resumed} done by an earlier run" if self.resumed else ""),
        ]
        if self.backend != "offline":
            tokens = self.online.prompt_tokens + self.batch.prompt_tokens
            completion = self.online.completion_tokens + self.batch.completion_tokens
            cost, saved = self.cost(), self.saved()
            cost_text = "unknown (no price for this model: set generate.prices)" if cost is None else f"${cost:.4f}"
            lines.append(
                f"  {self.requests} requests ({self.retries} retries"
                + (f", {self.rate_limit_retries} of them after a rate limit" if self.rate_limit_retries else "")
                + f"), {self.cache_hits} answers from the cache; "
                f"tokens: {tokens} prompt + {completion} completion; cost {cost_text}"
                + (f"; the cache saved ${saved:.4f}" if saved else "")
            )
        if self.incomplete:
            lines.append(f"  {self.incomplete} requests still failed after retries: run again to retry them")
        return "\n".join(lines)

    def failure(self, rejects: str | Path, max_retries: int) -> str | None:
        """Why the run has not produced what was asked (the stage and `data generate` both fail with it), or `None`.

        Args:
            rejects (`str | Path`): the rejects file (its first reject is quoted when nothing was generated).
            max_retries (`int`): the retries each request had.
        """
        if self.incomplete:
            return (
                f"{self.incomplete} requests still failed after {max_retries} retries (see {rejects}); run again to "
                "retry only those, answered requests are cached"
            )
        if self.ok == 0:
            return (
                f"generation produced no conversations out of {self.jobs} jobs; the reasons are in {rejects}"
                f"{_first_reject(Path(rejects))}"
            )
        return None


def _first_reject(path: Path) -> str:
    """`"; the first: REASON: DETAIL"` from a rejects file (shortened), or `""` when there is none to show."""
    try:
        with path.open(encoding="utf-8") as lines:
            first = json.loads(next(lines))
    except (OSError, StopIteration, ValueError):
        return ""
    detail = str(first.get("detail") or "")
    detail = detail if len(detail) <= 400 else detail[:400] + "…"
    return f"; the first: {first.get('reason', '?')}" + (f": {detail}" if detail else "")
