"""The dataset card (`README.md`) of a published instruction dataset: Hub metadata with the configs and splits
`load_dataset` reads, and a body that says where the data came from and how it was made.

It states the source (domain, source, licence), the teacher model and generation settings, the prompt types with
their version (the domain's version and a hash of each prompt type's files, so two datasets made with the same
prompts can be told apart from ones whose prompts changed), the generation date, the records kept and rejected by
reason and the cost. Everything comes from the run's manifest, recipe and files, aggregated: no record, id, path,
caption or response is quoted, so patient identifiers cannot reach it, and the same data gives the same card.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from huggingface_hub import DatasetCard, DatasetCardData

from llava_adapt.prompt_folder import prompt_type_hash

if TYPE_CHECKING:
    from llava_adapt.hub.dataset import DataRun

COLUMNS = {
    "conversations": "`id`, `image`, `conversations` (LLaVA turns `{from, value}`, `from` human or gpt; the first "
    "human turn of an image sample holds `<image>`), `prompt_type`",
    "captions": "`id`, `image`, `caption`",
    "rejects": "`id`, `record_id`, `prompt_type`, `image`, `reason` (never the teacher's response)",
}
SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"))


def _size_category(n: int) -> str:
    return next((name for limit, name in SIZES if n < limit), "n>1M")


def _teacher(run: DataRun) -> str:
    cfg = run.recipe.generate
    if cfg.backend == "offline":
        return "the domain's offline generator (templates over each record's labels; no language model)"
    where = "Azure OpenAI" if cfg.provider == "azure" else "an OpenAI-compatible API"
    batch = ", OpenAI Batch API" if cfg.batch_api else ""
    return (
        f"`{cfg.model}` through {where} (temperature {cfg.temperature}, at most {cfg.max_tokens} tokens{batch}), "
        "given each caption and the domain's allow-listed context, never the image"
    )


def _cost(info: dict[str, Any]) -> str:
    if not info.get("requests") and info.get("backend") == "offline":
        return "none (generated offline)"
    usage = info.get("usage") or {}
    prompt = sum(int(part.get("prompt_tokens", 0)) for part in usage.values() if isinstance(part, dict))
    completion = sum(int(part.get("completion_tokens", 0)) for part in usage.values() if isinstance(part, dict))
    cost = info.get("cost_usd")
    price = "not priced (model not in the price table)"
    if isinstance(cost, (int, float)):
        price = f"${cost:,.2f}" if cost >= 0.01 else f"${cost:.4f}"
    return f"{price} for {info.get('requests', 0)} requests ({prompt} prompt and {completion} completion tokens)"


def _reasons(counts: dict[str, int] | Counter[str]) -> str:
    return ", ".join(f"{reason}: {n}" for reason, n in sorted(counts.items())) or "none"


def _prompt_rows(run: DataRun) -> list[str]:
    domain = run.domain
    rows = ["| prompt type | conversations | prompts version |", "|---|---|---|"]
    for prompt_type, n in sorted(run.counts.get("prompt_types", Counter()).items()):
        digest = prompt_type_hash(domain.prompts_dir, prompt_type) if domain else None
        version = digest[:12] if digest else None
        text = f"`{run.recipe.domain}` v{domain.version}, files sha256 `{version}`" if domain and version else "–"
        rows.append(f"| {prompt_type or '–'} | {n} | {text} |")
    return rows


def _record_rows(run: DataRun) -> list[str]:
    rows = ["| stage | records kept | skipped or rejected (reason: count) |", "|---|---|---|"]
    for stage in ("prepare", "generate"):
        counts = (run.manifest.stage(stage) or {}).get("counts", {})
        rows.append(f"| {stage} | {counts.get('kept', 0)} | {_reasons(counts.get('skipped', {}))} |")
    return rows


def build_dataset_card(
    run: DataRun, repo_id: str, configs: list[str], include_images: bool, license: str | None = None
) -> DatasetCard:
    """Render the card of a dataset written by `write_dataset` (its counts filled).

    Args:
        run (`DataRun`): the run, after its files were written.
        repo_id (`str`): the dataset repository, `OWNER/NAME`.
        configs (`list[str]`): the configs written (`conversations`, `captions`, `rejects`).
        include_images (`bool`): whether the images are embedded.
        license (`str`, *optional*): the data's Hub license id; `unknown` when not given.
    """
    recipe, domain, rows = run.recipe, run.domain, run.counts.get("rows", Counter())
    name = repo_id.split("/")[-1]
    data = DatasetCardData(
        license=license or "unknown",
        pretty_name=name,
        task_categories=["image-text-to-text"],
        tags=["llava-adapt", recipe.domain, "llava", "instruction-tuning", "synthetic"],
        size_categories=[_size_category(rows["conversations"])],
        configs=[
            {
                "config_name": config,
                "data_files": [{"split": "train", "path": f"{config}/train-*"}],
                **({"default": True} if config == "conversations" else {}),
            }
            for config in configs
        ],  # fmt: skip
    )
    source = domain.sources.get(recipe.data.source) if domain else None
    info = ((run.manifest.stage("generate") or {}).get("info") or {}).get("generate") or {}
    ended = str((run.manifest.stage("generate") or {}).get("ended", ""))[:10] or "unknown"
    images = (
        "embedded in the Parquet files (the `datasets` `Image` feature)"
        if include_images
        else "referenced by path, not included: `image` is relative to the `data/images/` folder of the run that "
        "made the data (files it converted or synthesised) or to its data root (files read in place)"
    )
    lines = [
        f"# {name}",
        "",
        f"Instruction-tuning data made by llava-adapt for the `{recipe.domain}` domain, in "
        "LLaVA's format: the captions stage 1 (`align`) trains on and the conversations stage 2 (`instruct`) "
        f"trains on. Images are {images}.",
        "",
        "| config | rows | columns |",
        "|---|---|---|",
        *(f"| {c}{' (default)' if c == 'conversations' else ''} | {rows[c]} | {COLUMNS[c]} |" for c in configs),
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        f'conversations = load_dataset("{repo_id}", split="train")',
        f'captions = load_dataset("{repo_id}", "captions", split="train")',
        "```",
        "",
        "## Source",
        "",
        f"- Domain: `{recipe.domain}`" + (f" — {domain.description} (version {domain.version})" if domain else ""),
        f"- Source: `{recipe.data.source}`" + (f" — {source.description}" if source else ""),
        f"- Licence: `{license or 'unknown'}`. Captions and images keep the terms of the data they came from; "
        "check them before reusing this dataset.",
        "",
        "## Generation",
        "",
        f"- Teacher: {_teacher(run)}.",
        f"- Conversations per record and prompt type: {recipe.generate.samples_per_record}.",
        f"- Generated on {ended} (the end of the `generate` stage).",
        f"- Cost: {_cost(info)}.",
        "",
        *_prompt_rows(run),
        "",
        "## Records kept and rejected",
        "",
        *_record_rows(run),
        "",
        f"Rejected conversations by reason: {_reasons(run.counts.get('rejected', Counter()))}."
        + (" The `rejects` config lists them without the teacher's responses." if "rejects" in configs else ""),
    ]
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n")
