"""Metric declarations: every built-in benchmark declares every metric it reports; how specs resolve, travel in
`metrics.json` and print; what `check_domain` refuses."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from llava_adapt.domain import Benchmark, DomainContractError, check_domain
from llava_adapt.evaluate.metric_spec import (
    CORE_SPECS,
    MetricSpec,
    benchmark_specs,
    declared_spec,
    format_metric,
    load_specs,
    read_specs,
    resolve_specs,
    spec_of,
    specs_record,
)
from llava_adapt.evaluate.metrics import CLOSED_ACCURACY_SPECS, closed_accuracy
from llava_adapt.registry import get_domain
from tests.worked_metrics import benchmark_scores, worked_items, worked_metrics_json

BUILT_IN = [(d, b) for d in ("biomed", "general", "scienceqa") for b in get_domain(d).benchmarks]


@pytest.mark.parametrize(("domain", "benchmark"), BUILT_IN, ids=[f"{d}/{b}" for d, b in BUILT_IN])
def test_every_metric_a_built_in_benchmark_reports_is_declared(domain: str, benchmark: str) -> None:
    bench = get_domain(domain).benchmarks[benchmark]
    specs = benchmark_specs(bench)
    items, answers = worked_items(domain, benchmark)
    for role, scores in benchmark_scores(bench, items, answers).items():
        assert scores, role
        undeclared = [name for name in scores if declared_spec(name, specs) is None]
        assert undeclared == [], f"{domain}/{benchmark} ({role}) reports undeclared metrics"
    resolved, primary = resolve_specs(specs, benchmark_scores(bench, items, answers)["metrics"])
    assert primary is not None and resolved[primary].kind == "score"
    assert sum(spec.primary for spec in resolved.values()) == 1


def test_the_worked_items_reach_the_families_and_counts() -> None:
    """The worked items are worth something only if they make the metric functions emit their optional keys."""
    keys = {(d, b): set(worked_metrics_json(d, b)["metrics"]) for d, b in BUILT_IN}
    assert {"n_closed_by_rule", "closed_no_answer", "open_token_f1"} <= keys["biomed", "vqa_rad"]
    assert {"closed_accuracy/lesion", "open_recall/finding"} <= keys["biomed", "synthetic"]
    assert {"relative_score/conversation", "relative_score/chest_xray", "zero_reference", "judge_failures"} <= keys[
        "biomed", "llava_med_chat"
    ]
    assert {"relative_score_mean_of_ratios/conv", "reference_score/detail", "token_f1/complex"} <= keys[
        "general", "llava_bench_wild"
    ]
    assert {"NAT", "SOC", "LAN", "TXT", "IMG", "NO", "G1-6", "G7-12", "n_NAT", "parse_failed"} <= keys[
        "scienceqa", "scienceqa"
    ]
    ensemble = worked_metrics_json("scienceqa", "synthetic")["ensemble"]
    assert {"n_requeried", "n_judge_no_answer", "n_requery_no_answer"} <= set(ensemble)


@pytest.mark.parametrize(
    ("domain", "benchmark", "primary", "baselines", "counts"),
    [
        ("general", "shapes_color", "accuracy", {"chance"}, {"num_closed", "num_items"}),
        ("general", "llava_bench_coco", "relative_score", {"reference_score"}, {"n_items", "judge_failures"}),
        ("biomed", "vqa_rad", "closed_accuracy", set(), {"n_closed", "n_open", "n_closed_by_rule"}),
        ("biomed", "llava_med_chat", "relative_score", {"reference_score"}, {"zero_reference", "n_scored"}),
        ("scienceqa", "scienceqa", "accuracy", set(), {"count", "correct", "parse_failed", "n_IMG"}),
    ],
)
def test_kinds_of_the_built_in_metrics(
    domain: str, benchmark: str, primary: str, baselines: set[str], counts: set[str]
) -> None:
    data = worked_metrics_json(domain, benchmark)
    specs, found = read_specs(data)
    assert found == primary
    assert {n.split("/")[0] for n, s in specs.items() if s.kind == "baseline"} == baselines
    assert counts <= {n for n, s in specs.items() if s.kind == "count"}
    scores = {n for n, s in specs.items() if s.kind == "score"}
    assert not scores & (counts | baselines | {"chance", "closed_no_answer", "model_score"})


def test_a_judged_benchmark_without_its_judge_falls_back_to_its_own_primary() -> None:
    bench = get_domain("general").benchmarks["llava_bench_coco"]
    items, answers = worked_items("general", "llava_bench_coco")
    _, primary = resolve_specs(benchmark_specs(bench), bench.metrics(items, answers))
    assert primary == "token_recall"


def test_exact_names_win_over_patterns_and_patterns_go_in_order() -> None:
    specs = {
        "n_*": MetricSpec(kind="count"),
        "n_special": MetricSpec(kind="diagnostic"),
        "acc/*": MetricSpec(),
        "*": MetricSpec(kind="diagnostic", higher_is_better=False),
    }
    assert spec_of("n_special", specs).kind == "diagnostic"
    assert spec_of("n_x", specs).kind == "count"
    assert spec_of("acc/CT", specs) == MetricSpec()
    assert spec_of("other", specs).higher_is_better is False


def test_undeclared_metrics_are_diagnostics_or_counts_by_name() -> None:
    assert spec_of("accuracy", {}).kind == "diagnostic"
    assert spec_of("num_questions", {}).kind == "count"
    assert spec_of("closed/n", {}).kind == "count"
    assert spec_of("count", {}).kind == "count"


def test_metrics_json_carries_only_declared_names_and_reads_back(tmp_path: Path) -> None:
    record = specs_record(CLOSED_ACCURACY_SPECS, {"accuracy": 0.5, "chance": 0.25, "num_closed": 4, "extra": 1.0})
    assert set(record["metric_specs"]) == {"accuracy", "chance", "num_closed", "num_items"}
    assert record["primary_metric"] == "accuracy"
    assert record["metric_specs"]["chance"] == {"kind": "baseline", "baseline_for": "accuracy",
                                                "description": "accuracy of guessing uniformly"}  # fmt: skip
    (tmp_path / "metrics.json").write_text(json.dumps({"metrics": {}, **record}), encoding="utf-8")
    specs, primary = load_specs(tmp_path)
    assert primary == "accuracy"
    assert specs["accuracy"] == dataclasses.replace(CLOSED_ACCURACY_SPECS["accuracy"], primary=True)
    assert specs["num_items"] == CORE_SPECS["num_items"]


def test_reading_tolerates_files_without_or_with_broken_declarations(tmp_path: Path) -> None:
    assert load_specs(tmp_path) == ({}, None)  # no metrics.json
    assert read_specs({"metrics": {"accuracy": 1.0}}) == ({}, None)  # a file from before declarations
    broken = {"metric_specs": {"a": {"kind": "grade"}, "b": "score", "c": {"kind": "count"}}, "primary_metric": "a"}
    assert read_specs(broken) == ({"c": MetricSpec(kind="count")}, None)


@pytest.mark.parametrize(
    ("value", "spec", "text"),
    [
        (151.0, MetricSpec(kind="count"), "151"),
        (151, MetricSpec(kind="count"), "151"),
        (0.75, MetricSpec(), "0.7500"),
        (88.1666, MetricSpec(percent=True), "88.17"),
        (0.25, MetricSpec(kind="baseline"), "0.2500"),
        (7.35, MetricSpec(kind="diagnostic"), "7.3500"),
    ],
)
def test_format_metric(value: float, spec: MetricSpec, text: str) -> None:
    assert format_metric(value, spec) == text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "grade"}, "not one of"),
        ({"kind": "count", "primary": True}, "must be a score"),
        ({"baseline_for": "accuracy"}, "for baselines"),
    ],
)
def test_a_spec_that_contradicts_itself_is_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MetricSpec(**kwargs)


def _with_benchmark(bench: Benchmark):
    general = get_domain("general")
    return dataclasses.replace(general, benchmarks={**general.benchmarks, "mine": bench})


def test_check_domain_refuses_wrong_declarations_and_accepts_none() -> None:
    plain = Benchmark(description="no declarations", load=lambda args, ctx: iter(()), metrics=closed_accuracy)
    check_domain(_with_benchmark(plain), "test")  # a plugin that declares nothing still loads
    two = dataclasses.replace(plain, metric_specs={"a": MetricSpec(primary=True), "b": MetricSpec(primary=True)})
    with pytest.raises(DomainContractError, match="2 primary metrics"):
        check_domain(_with_benchmark(two), "test")
    wrong = dataclasses.replace(plain, metric_specs={"a": {"kind": "score"}})
    with pytest.raises(DomainContractError, match=r"metric_specs\['a'\] is not"):
        check_domain(_with_benchmark(wrong), "test")
    orphan = dataclasses.replace(plain, metric_specs={"chance": MetricSpec(kind="baseline", baseline_for="acc")})
    with pytest.raises(DomainContractError, match="is the baseline of 'acc', which it does not declare"):
        check_domain(_with_benchmark(orphan), "test")
    with pytest.raises(DomainContractError, match="card_notices"):
        check_domain(dataclasses.replace(get_domain("general"), card_notices="one string"), "test")
