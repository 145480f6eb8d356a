"""The `scienceqa` domain: ScienceQA (Lu et al., 2022) the way LLaVA fine-tuned and evaluated on it.

Sources: `problems` (ScienceQA in the lupantech or Hugging Face parquet layout) and `synthetic` (a tiny set built in
code, for the offline preset). Benchmarks: `scienceqa` (letter answers), `scienceqa_explain` (LLaVA QCM-LEA
answers) and `synthetic`, all scored with the published per-category accuracies and LLaVA's answer parser.
The LLaVA + GPT-4 ensembles (`ensemble.py`) run with `evaluate.ensemble: complement | requery`. See README.md.
"""

from __future__ import annotations

from pathlib import Path

from llava_adapt.plugin import Domain

from .benchmark import (
    scienceqa_benchmark,
    scienceqa_explain_benchmark,
    synthetic_benchmark,
)
from .conversation import CONTEXT_FIELDS, LEAK_PATTERNS, build_context, offline_generator
from .source import problems_source, synthetic_source

domain = Domain(
    name="scienceqa",
    description="ScienceQA multiple-choice science questions (LLaVA's fine-tuning and evaluation protocol)",
    sources={"problems": problems_source, "synthetic": synthetic_source},
    benchmarks={
        "scienceqa": scienceqa_benchmark,
        "scienceqa_explain": scienceqa_explain_benchmark,
        "synthetic": synthetic_benchmark,
    },
    prompts_dir=Path(__file__).parent / "prompts",
    build_context=build_context,
    offline_generator=offline_generator,
    context_fields=CONTEXT_FIELDS,
    leak_patterns=LEAK_PATTERNS,
    version="1",
)
