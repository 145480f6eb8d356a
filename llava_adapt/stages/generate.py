"""Stage `generate`: `data/captions.jsonl` -> `data/instruct.jsonl` (conversations) + `data/instruct_rejects.jsonl`.

With `generate.backend: openai` a GPT-4-class teacher writes the conversations (requests cached in the run's
`cache/`, so a rerun pays for nothing twice); with `offline`, the domain's offline generator does. Rejects are
counted by reason in the manifest; token usage and cost are recorded under `generate`.

A run whose requests still failed after every retry (rate limits, server errors) fails the stage, so that
`recipe run` resumes it: the resumed attempt keeps everything written and retries only those requests.
"""

from __future__ import annotations

import sys

from llava_adapt.errors import LlavaAdaptError
from llava_adapt.generate.output import adopt_outputs
from llava_adapt.generate.runner import generate_instructions
from llava_adapt.stages.context import StageContext


class GenerateError(LlavaAdaptError, RuntimeError):
    """Generation produced no conversations, or some requests still failed after every retry."""


def run(ctx: StageContext) -> None:
    """Generate the stage-2 conversations of the run."""
    layout = ctx.layout
    if ctx.resume:  # the manifest says this stage wrote them (perhaps before generate kept a sidecar)
        adopt_outputs(layout.instruct_data, layout.instruct_rejects)
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
    failure = report.failure(layout.instruct_rejects, ctx.recipe.generate.max_retries)
    if failure:
        raise GenerateError(failure)
