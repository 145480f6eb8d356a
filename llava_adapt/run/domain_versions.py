"""What of a domain each stage's config hash covers, so that changing one part of a domain reruns only the stages
that read it.

The stage table (`llava_adapt.run.stage_table`) names these sections next to the recipe's own:

- `domain.source`: the recipe's source and its version (`Source.version`, else `Domain.version`): `prepare`;
- `domain.prompts`: the domain's code version (`Domain.version`: `build_context`, `offline_generator`), its
  allow-lists and leak patterns, and a content hash of the prompt folders the recipe generates with: `generate`;
- `domain.finetune`: the version of the benchmark whose train split `finetune` trains on;
- `domain.benchmarks`: the versions of the benchmarks `evaluate` scores (`Benchmark.version`, else
  `Domain.version`): a metric fix reruns `evaluate` only.

Each stage's hash also covers the hashes of the stages before it, so a change reruns its stage and every later one.
"""

from __future__ import annotations

from typing import Any

from llava_adapt.domain import Domain
from llava_adapt.prompt_folder import prompt_folder_hash
from llava_adapt.recipe.schema import Recipe


def _version(part: Any, domain: Domain) -> str:
    """A part's own version, else the domain's."""
    own = getattr(part, "version", None)
    return own if own is not None else domain.version


def domain_sections(recipe: Recipe, domain: Domain) -> dict[str, dict[str, Any]]:
    """The `domain.*` sections of a recipe's stage hashes (see the module docstring).

    Args:
        recipe (`Recipe`): the validated recipe.
        domain (`Domain`): its domain.

    Returns:
        Each section's JSON-serialisable content, by section name.
    """
    source = recipe.data.source
    # a recipe without `generate` reads no prompts (and a domain under test may have no prompt folder)
    prompt_types = (recipe.generate.prompt_types or domain.prompt_types()) if "generate" in recipe.stages else []
    finetuned = recipe.finetune.benchmark
    return {
        "domain.source": {
            "name": domain.name,
            "source": source,
            "version": _version(domain.sources.get(source), domain),
        },
        "domain.prompts": {
            "name": domain.name,
            "version": domain.version,
            "context_fields": list(domain.context_fields),
            "prompt_context_fields": {k: list(v) for k, v in sorted(dict(domain.prompt_context_fields).items())},
            "leak_patterns": list(domain.leak_patterns),
            "prompts": prompt_folder_hash(domain.prompts_dir, list(prompt_types)),
        },
        "domain.finetune": {
            "name": domain.name,
            "benchmark": finetuned,
            "version": _version(domain.benchmarks.get(finetuned or ""), domain) if finetuned else None,
        },
        "domain.benchmarks": {
            "name": domain.name,
            "versions": {name: _version(domain.benchmarks.get(name), domain) for name in recipe.evaluate.benchmarks},
        },
    }
