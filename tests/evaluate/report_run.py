"""A realistic run directory for the report tests, built without training: the biomed `synthetic` benchmark's own
items, images and metric function, the evaluate stage's row and `metrics.json` shapes, trainer-shaped log histories
for `align`, `instruct` and its stage-2-only copy, and a manifest with the stage times of the README's tiny run.

The answers are made up the way the tiny run's models answer: the trained model in sentences, mostly right but
wrong about the side of a lesion; the stage-2-only model alike; the untrained baseline with long runs of characters
without a space (what an untrained tiny model decodes), which is what used to overflow the gallery's cards.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from domains.biomed.tiny import SyntheticVQAArgs, load_benchmark
from llava_adapt.data.jsonl import write_jsonl
from llava_adapt.data.records import VQAItem
from llava_adapt.domain import SourceContext
from llava_adapt.evaluate.generation import format_question
from llava_adapt.evaluate.metric_spec import benchmark_specs, specs_record
from llava_adapt.registry import get_domain
from llava_adapt.run.manifest import COMPLETE, Manifest
from tests.hub.conftest import write_recipe

BENCHMARK = "synthetic"
# Wall-clock seconds of each stage (the manifest's) and the trainer's loop time (`train_runtime`) where it trains.
STAGE_SECONDS = {"prepare": 0.7, "generate": 0.9, "align": 18.2, "instruct": 511.0, "evaluate": 9.2}
LOOP_SECONDS = {"align": 10.3, "instruct": 68.0, "instruct/without_align": 66.5}
BASELINE_ANSWER = "Noentcri\ufffd{2MRZTANuser\ufffd{2MRZTAN" * 6  # no space anywhere


def log_history(steps: int, first_loss: float, last_loss: float, lr: float, runtime: float) -> list[dict]:
    """A trainer's `state.log_history`: a loss entry every 25 steps, then the summary entry."""
    logged = list(range(25, steps + 1, 25))
    entries = [
        {"loss": round(last_loss + (first_loss - last_loss) * (1 - i / len(logged)) ** 3, 4),
         "learning_rate": lr * (1 - i / len(logged)), "epoch": step / steps, "step": step}
        for i, step in enumerate(logged)
    ]  # fmt: skip
    mean = sum(e["loss"] for e in entries) / len(entries)
    return [*entries, {"train_runtime": runtime, "train_loss": mean, "epoch": 1.0, "step": steps}]


def _answer(item: VQAItem, right: bool) -> str:
    if item.meta["kind"] == "side":
        side = item.answer if right else {"left": "right", "right": "left"}[item.answer]
        return f"The lesion is on the {side} side of the image."
    return f"The answer is {item.answer}." if right else "I cannot tell."


def prediction_rows(items: list[VQAItem], predictions: list[str], correct: Any) -> list[dict[str, Any]]:
    """`predictions.jsonl`'s rows as the evaluate stage writes them (image relative to the benchmark's folder)."""
    rows = []
    for item, prediction in zip(items, predictions, strict=True):
        row = {"id": item.id, "image": f"images/{item.image}", "question": item.question, "answer": item.answer,
               "prediction": prediction, "answer_type": item.answer_type}  # fmt: skip
        if item.answer_type == "closed":
            row["correct"] = correct(item, prediction)
        rows.append(row)
    return rows


# What `stages/model_source.py` records for the preset's text-pretrained tiny model (the README run's figures).
TEXT_PRETRAINING = {"texts": 3233, "steps": 200, "first_loss": 6.2843, "last_loss": 0.3190}


def build_report_run(root: Path, n_images: int = 12) -> Path:
    """Write a finished tiny biomed run directory (no model weights) at `root` and return it."""
    root.mkdir(parents=True)
    write_recipe(root, model={"source": "tiny"}, stages=["prepare", "generate", "align", "instruct", "evaluate"],
                 evaluate={"benchmarks": [BENCHMARK]})  # fmt: skip
    manifest = Manifest(root / "manifest.json")
    manifest.set_run_info(recipe="recipes/biomed.yaml", preset="tiny", overrides=[], domain="biomed")
    for stage, seconds in STAGE_SECONDS.items():
        manifest.start_stage(stage, f"hash-{stage}", resume=False)
        info = {"tiny_text_pretraining": TEXT_PRETRAINING} if stage in ("align", "instruct", "evaluate") else None
        manifest.end_stage(stage, COMPLETE, seconds, kept=259, skipped={"truncated or corrupt DICOM": 1}, info=info)
    histories = {
        "align": log_history(300, 6.07, 5.88, 1e-3, LOOP_SECONDS["align"]),
        "instruct": log_history(250, 4.0, 0.07, 2e-3, LOOP_SECONDS["instruct"]),
        "instruct/without_align": log_history(250, 4.2, 0.08, 2e-3, LOOP_SECONDS["instruct/without_align"]),
    }
    for folder, history in histories.items():
        (root / folder).mkdir(parents=True)
        (root / folder / "log_history.json").write_text(json.dumps(history), encoding="utf-8")

    bench_dir = root / "eval" / BENCHMARK
    ctx = SourceContext(data_root=root / "data", output_dir=bench_dir / "images", seed=0)
    items = list(load_benchmark(SyntheticVQAArgs(n_images=n_images, image_size=64), ctx))
    bench = get_domain("biomed").benchmarks[BENCHMARK]
    answers = {
        "trained": [_answer(item, item.meta["kind"] != "side" or n % 3 != 0) for n, item in enumerate(items)],
        "without_align": [_answer(item, item.meta["kind"] != "side" or n % 2 != 0) for n, item in enumerate(items)],
        "baseline": [BASELINE_ANSWER] * len(items),
    }
    files = {"trained": "predictions.jsonl", "without_align": "without_align_predictions.jsonl",
             "baseline": "baseline_predictions.jsonl"}  # fmt: skip
    scores = {}
    for role, predictions in answers.items():
        write_jsonl(bench_dir / files[role], prediction_rows(items, predictions, bench.correct))
        scores[role] = bench.metrics(items, predictions)
    metrics = {
        "benchmark": BENCHMARK,
        "model": "instruct",
        "num_items": len(items),
        "prompt_example": format_question(items[0], bench.prompt),
        "metrics": scores["trained"],
        "baseline": scores["baseline"],
        "without_align": scores["without_align"],
    }
    metrics.update(specs_record(benchmark_specs(bench), *scores.values()))
    (bench_dir / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    return root
