"""Every built-in benchmark's real metrics on a few worked items: what its metric function, its judge and its ensemble
return, and the `metrics.json` the evaluate stage writes from them.

The items are built by hand to reach every branch that adds a key (closed and open questions, groups, answer types a
rule guessed, a failed and an unparsable judge reply, a reference scored 0, every ScienceQA category, both
ensembles), so that a test can check that each key is declared, and the hub tests can publish real files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llava_adapt.data.records import VQAItem
from llava_adapt.domain import Benchmark
from llava_adapt.evaluate.metric_spec import benchmark_specs, specs_record
from llava_adapt.registry import get_domain

JUDGE_REPLIES = ["8 6\nclose", "7 7\nsame", "0 5\nno reference", "no scores here", None]  # parsed, 0, bad, failed
ANSWER_TYPE_SOURCE = "answer_type_source"  # domains.biomed.answer_types.SOURCE_KEY
RULE = "yes/no rule"  # domains.biomed.answer_types.RULE


def _vqa_items() -> tuple[list[VQAItem], list[str]]:
    typed = {ANSWER_TYPE_SOURCE: RULE}
    items = [
        VQAItem(id="c1", image="a.png", question="Is there a fracture?", answer="yes", answer_type="closed",
                meta={"kind": "lesion", "category": "conversation", **typed}),
        VQAItem(id="c2", image="b.png", question="Which side?", answer="left", answer_type="closed",
                choices=["left", "right"], meta={"kind": "side", "category": "conversation"}),
        VQAItem(id="c3", image="c.png", question="Is it a CT?", answer="no", answer_type="closed",
                meta={"kind": "modality", "category": "description", **typed}),
        VQAItem(id="o1", image="d.png", question="What organ?", answer="left lung", answer_type="open",
                meta={"kind": "body_part", "category": "conversation", **typed}),
        VQAItem(id="o2", image="e.png", question="What is seen?", answer="a round nodule", answer_type="open",
                meta={"kind": "finding", "category": "description"}),
    ]  # fmt: skip
    return items, ["Yes.", "On the left side.", "I cannot tell", "the left lung", "nodule nodule nodule"]


def _chat_items(domain: str) -> tuple[list[VQAItem], list[str]]:
    meta: list[dict[str, Any]] = [
        {"category": "conversation", "caption": "Figure 1: a chest X-ray.", "domain": "chest_xray"},
        {"category": "detailed", "caption": "Figure 2: a CT.", "domain": "ct_scan"},
        {"category": "conversation", "caption": "Figure 3: an MRI.", "domain": "mri"},
        {"category": "complex", "caption": "Figure 4: a slide.", "domain": "histology"},
        {"category": "detailed", "caption": "Figure 5: an X-ray.", "domain": "chest_xray"},
    ]
    if domain == "general":  # LLaVA-Bench items: the judge's context and rule
        categories = ["conv", "detail", "conv", "complex", "detail"]
        meta = [{"category": c, "context": "A dog on a sofa.", "rule": c} for c in categories]
    items = [
        VQAItem(id=f"q{i}", image=f"{i}.png", question="What does the image show?", answer="a dog on a red sofa",
                answer_type="open", meta=m)
        for i, m in enumerate(meta)
    ]  # fmt: skip
    return items, ["a dog", "a red sofa with a dog on it", "", "a cat", "the dog sleeps on the sofa"]


def _scienceqa_items() -> tuple[list[VQAItem], list[str]]:
    rows = [
        ("natural science", "grade3", True, True, 0),
        ("social science", "grade8", False, True, 1),
        ("language science", "grade5", False, False, 0),
        ("natural science", "grade10", True, False, 2),
    ]
    items = [
        VQAItem(id=f"s{i}", image="blank.png", question=f"Question {i}\nOptions: (A) x (B) y (C) z",
                answer="ABC"[gold], answer_type="closed", choices=["x", "y", "z"],
                meta={"subject": subject, "grade": grade, "has_hint": hint, "has_image": image, "answer_index": gold})
        for i, (subject, grade, hint, image, gold) in enumerate(rows)
    ]  # fmt: skip
    return items, ["A", "The answer is A.", "I am not sure", "C. z"]


def _shapes_items() -> tuple[list[VQAItem], list[str]]:
    choices = ["red", "green", "blue", "yellow"]
    items = [
        VQAItem(id=f"k{i}", image=f"{i}.png", question="What color is the shape?", answer=answer,
                answer_type="closed", choices=choices)
        for i, answer in enumerate(["red", "blue", "green"])
    ]  # fmt: skip
    return items, ["red", "It is green.", "green"]


def worked_items(domain: str, benchmark: str) -> tuple[list[VQAItem], list[str]]:
    """Items and the model's answers that exercise benchmark `benchmark` of built-in domain `domain`."""
    if domain == "scienceqa":
        return _scienceqa_items()
    if domain == "general":
        return _shapes_items() if benchmark == "shapes_color" else _chat_items("general")
    return _chat_items("biomed") if benchmark == "llava_med_chat" else _vqa_items()


def _ask(requests: Sequence[list[dict[str, str]]]) -> list[str | None]:
    """A judge model that answers B, once gives no letter and once fails."""
    replies: list[str | None] = ["The answer is B."] * len(requests)
    if len(replies) > 1:
        replies[0], replies[1] = "I do not know.", None
    return replies


def benchmark_scores(bench: Benchmark, items: list[VQAItem], answers: list[str]) -> dict[str, dict[str, float]]:
    """What the evaluate stage computes for one model's answers: `metrics` (the metric function, then the judge's
    scores) and `ensemble` (each ensemble kind's scores and counts, by kind), as real functions return them."""
    metrics = dict(bench.metrics(items, answers))
    if bench.judge is not None:
        replies = (JUDGE_REPLIES * len(items))[: len(items)]
        metrics.update(bench.judge.score(items, replies))
    out = {"metrics": metrics}
    if bench.ensemble is not None:
        for kind in bench.ensemble.kinds:
            final, counts = bench.ensemble.run(kind, items, answers, _ask)
            out[f"ensemble/{kind}"] = {**bench.metrics(items, final), **counts}
    return out


def worked_metrics_json(domain: str, benchmark: str, baseline: bool = True) -> dict[str, Any]:
    """The `metrics.json` the evaluate stage writes for benchmark `benchmark` of built-in domain `domain`, from the
    worked items: the trained model's metrics, the untrained model's (`baseline`, its answers all "no") and, for
    a benchmark with an ensemble, the `requery` ensemble's."""
    bench = get_domain(domain).benchmarks[benchmark]
    items, answers = worked_items(domain, benchmark)
    scores = benchmark_scores(bench, items, answers)
    data: dict[str, Any] = {
        "benchmark": benchmark,
        "model": "instruct",
        "num_items": len(items),
        "prompt_example": items[0].question,
        "metrics": scores["metrics"],
    }
    if baseline:
        data["baseline"] = benchmark_scores(bench, items, ["no"] * len(items))["metrics"]
    if "ensemble/requery" in scores:
        data["ensemble"] = scores["ensemble/requery"]
        data["ensemble_info"] = {"kind": "requery", "model": "gpt-4o"}
    data.update(specs_record(benchmark_specs(bench), data["metrics"], data.get("baseline"), data.get("ensemble")))
    return data
