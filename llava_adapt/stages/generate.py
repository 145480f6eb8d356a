"""Stage `generate`: `data/captions.jsonl` -> `data/instruct.jsonl` (conversations) + `data/instruct_rejects.jsonl`.

With `generate.backend: openai` a GPT-4-class teacher writes the conversations (requests cached in the run's
`cache/`, so a rerun pays for nothing twice); with `offline`, the domain's offline generator does. Rejects are
counted by reason in the manifest; token usage and cost are recorded under `generate`.

A run whose requests still failed after every retry (rate limits, server errors) fails the stage, so that
`recipe run` resumes it: the resumed attempt keeps everything written and retries only those requests.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from llava_adapt.generate.runner import generate_instructions
from llava_adapt.stages.context import StageContext


class GenerateError(RuntimeError):
    """Generation produced no conversations, or some requests still failed after every retry."""


def run(ctx: StageContext) -> None:
    """Generate the stage-2 conversations of the run."""
    layout = ctx.layout
    report = generate_instructions(
        ctx.domain,
        captions=layout.captions,
        out=layout.instruct_data,
        rejects=layout.instruct_rejects,
        cache_dir=layout.cache_dir,
        config=ctx.recipe.generate,
        seed=ctx.recipe.seed,
        progress=sys.stderr.isatty(),
    )
    ctx.keep(report.ok)
    for reason, count in sorted(report.rejected.items()):
        ctx.skip(reason, count)
    ctx.record("generate", report.to_manifest())
    ctx.log.info(report.summary())
    if report.incomplete:
        raise GenerateError(
            f"{report.incomplete} requests still failed after {ctx.recipe.generate.max_retries} retries "
            f"(see {layout.instruct_rejects}); run the recipe again to retry only those, answered requests are cached"
        )
    if report.ok == 0:
        raise GenerateError(
            f"generation produced no conversations out of {report.jobs} jobs; the reasons are in "
            f"{layout.instruct_rejects}{_first_reject(layout.instruct_rejects)}"
        )


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
