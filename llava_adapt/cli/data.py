"""`llava-adapt data ...`: data tools that run outside a recipe (instruction generation)."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError
from rich.console import Console

from llava_adapt.cli.errors import CommandGroup
from llava_adapt.errors import InputError, LlavaAdaptError
from llava_adapt.generate.config import GenerateConfig

app = typer.Typer(
    cls=CommandGroup,
    help="Data tools: generate instruction-following conversations from captions.",
    epilog="Example: llava-adapt data generate --domain biomed --captions captions.jsonl --out instruct.jsonl",
    no_args_is_help=True,
)
console = Console(stderr=True)

GENERATE_EPILOG = (
    "Examples: llava-adapt data generate --domain general --captions caps.jsonl --out conv.jsonl --offline  |  "
    "OPENAI_API_KEY=... llava-adapt data generate --domain biomed --captions caps.jsonl --out conv.jsonl "
    "--model gpt-4o --rpm 500 --tpm 200000  |  ... --base-url http://localhost:8000/v1 --model my-vllm-model"
)


@app.command("generate", epilog=GENERATE_EPILOG)
def generate(
    domain: str = typer.Option(..., "--domain", help="Domain whose prompts to use (`llava-adapt domain ls`)."),
    captions: Path = typer.Option(..., "--captions", help="Caption records, JSON Lines ({id, image, caption, ...})."),
    out: Path = typer.Option(..., "--out", help="Conversations file (JSON Lines, LLaVA format); resumed if present."),
    rejects: Path | None = typer.Option(None, "--rejects", help="Rejects file [default: OUT_STEM.rejects.jsonl]."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Request cache [default: OUT_STEM.cache/]."),
    offline: bool = typer.Option(False, "--offline", help="Use the domain's offline generator (no network)."),
    prompt_type: list[str] | None = typer.Option(None, "--prompt-type", help="Prompt type(s) [default: all]."),
    model: str = typer.Option(GenerateConfig().model, "--model", help="Teacher model (Azure: deployment)."),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible server, e.g. vLLM."),
    azure: bool = typer.Option(False, "--azure", help="Azure OpenAI (--base-url is the endpoint)."),
    api_key_env: str = typer.Option("OPENAI_API_KEY", "--api-key-env", help="Variable holding the API key."),
    max_concurrency: int = typer.Option(8, "--max-concurrency", help="Requests in flight at once."),
    rpm: float | None = typer.Option(None, "--rpm", help="Requests per minute (client-side limit)."),
    tpm: float | None = typer.Option(None, "--tpm", help="Tokens per minute (client-side limit, estimated)."),
    timeout: float = typer.Option(120.0, "--timeout", help="Per-request timeout in seconds."),
    max_retries: int = typer.Option(5, "--max-retries", help="Retries per request (429, 5xx, timeouts)."),
    batch_api: bool = typer.Option(False, "--batch-api", help="Use the OpenAI Batch API (half price, slower)."),
    limit: int | None = typer.Option(None, "--limit", help="Only the first K caption records."),
    samples: int = typer.Option(1, "--samples-per-record", help="Conversations per record and prompt type."),
    max_caption_chars: int = typer.Option(
        GenerateConfig().max_caption_chars, "--max-caption-chars", help="Longer captions are rejected, not sent."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the offline generator and of description questions."),
    no_progress: bool = typer.Option(False, "--no-progress", help="Do not draw a progress bar."),
) -> None:
    """Generate conversations from caption records with a GPT-4-class teacher or the offline generator.

    Rerunning the same command resumes: conversations already written are kept, answered requests come from the
    cache, and only requests that failed after every retry are sent again.
    """
    from llava_adapt.generate.runner import generate_instructions  # openai loads here, not at CLI start-up
    from llava_adapt.registry import get_domain

    try:
        config = GenerateConfig(
            backend="offline" if offline else "openai",
            prompt_types=prompt_type or None,
            model=model,
            provider="azure" if azure else "openai",
            base_url=base_url,
            api_key_env=api_key_env,
            max_concurrency=max_concurrency,
            requests_per_minute=rpm,
            tokens_per_minute=tpm,
            timeout_s=timeout,
            max_retries=max_retries,
            batch_api=batch_api,
            limit=limit,
            samples_per_record=samples,
            max_caption_chars=max_caption_chars,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InputError(problems) from None
    # Bad input (an unknown domain, a malformed captions file, a missing key) ends with one line and exit code 2,
    # a full disk with 3 (`llava_adapt.errors`), through CommandGroup.
    rejects = rejects or out.with_name(f"{out.stem}.rejects{out.suffix or '.jsonl'}")
    report = generate_instructions(
        get_domain(domain),
        captions=captions,
        out=out,
        rejects=rejects,
        cache_dir=cache_dir or out.with_name(f"{out.stem}.cache"),
        config=config,
        seed=seed,
        progress=not no_progress,
    )
    console.print(report.summary(), highlight=False)
    failure = report.failure(rejects, max_retries)
    if failure:  # as `recipe run` does: nothing generated, or requests still failing, is not a success
        raise LlavaAdaptError(failure)
