"""Combine the model's answers with a GPT-4-class model's (`evaluate.ensemble`), through the judge's client.

A benchmark that offers ensembles (`Benchmark.ensemble`, e.g. ScienceQA's LLaVA + GPT-4 `complement` and `requery`)
writes the requests and combines the replies; this module gives it `ask`, which sends requests through
`llava_adapt.evaluate.judge.ask_judge` (the `evaluate.judge` model, its concurrency, rate limits, retries and the
run's response cache, so re-scoring costs nothing), then scores the ensemble's final answers with the benchmark's
own metrics and returns them with one row per question for `ensemble.jsonl` (id, question, reference, the model's
answer and the ensemble's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llava_adapt.data.records import VQAItem
from llava_adapt.domain import Benchmark
from llava_adapt.evaluate.config import JudgeConfig
from llava_adapt.evaluate.judge import JudgeRun, ask_judge


@dataclass
class EnsembleResult:
    """What one ensemble gave.

    Args:
        scores (`dict[str, float]`): the benchmark's metrics on the ensemble's answers, plus the ensemble's counts.
        facts (`dict[str, Any]`): what `metrics.json` and the manifest record (kind, model, requests and cost per
            round of requests).
        rows (`list[dict[str, Any]]`): one per question for `ensemble.jsonl` (id, question, reference, the model's
            answer, the ensemble's).
    """

    scores: dict[str, float]
    facts: dict[str, Any]
    rows: list[dict[str, Any]]


def run_ensemble(
    bench: Benchmark, kind: str, items: Sequence[VQAItem], answers: Sequence[str], config: JudgeConfig, cache_dir: Path
) -> EnsembleResult:
    """Run one ensemble of a benchmark on the model's answers and score it.

    Args:
        bench (`Benchmark`): the benchmark; its `ensemble` offers `kind`.
        kind (`str`): the ensemble to run (`evaluate.ensemble`).
        items (`Sequence[VQAItem]`): the questions.
        answers (`Sequence[str]`): the model's answers, same order.
        config (`JudgeConfig`): the model asked, and how to reach it (`evaluate.judge`).
        cache_dir (`Path`): the response cache folder (the run's `cache/`).

    Raises:
        ValueError: the benchmark offers no such ensemble, or its ensemble returned a wrong number of answers.
        JudgeError: the model cannot be asked at all (no key, bad key, unknown model, no quota).
    """
    if bench.ensemble is None or kind not in bench.ensemble.kinds:
        offered = ", ".join(bench.ensemble.kinds) if bench.ensemble else "none"
        raise ValueError(f"evaluate.ensemble {kind!r}: the benchmark offers {offered}")
    rounds: list[JudgeRun] = []

    def ask(requests: Sequence[list[dict[str, str]]]) -> list[str | None]:
        if not requests:
            return []
        run = ask_judge(requests, config, cache_dir)
        rounds.append(run)
        return run.replies

    final, counts = bench.ensemble.run(kind, items, answers, ask)
    if len(final) != len(items):
        raise ValueError(f"ensemble {kind!r} returned {len(final)} answers for {len(items)} questions")
    rows = [{"id": item.id, "question": item.question, "answer": item.answer, "prediction": answer,
             "ensemble": combined} for item, answer, combined in zip(items, answers, final, strict=True)]  # fmt: skip
    facts = {"kind": kind, "model": config.model, "description": bench.ensemble.description,
             "rounds": [run.to_manifest() for run in rounds]}  # fmt: skip
    return EnsembleResult({**bench.metrics(items, final), **counts}, facts, rows)
