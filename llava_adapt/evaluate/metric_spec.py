"""What a benchmark's metrics mean: which are the model's scores, which are reference levels, counts or diagnostics.

A metric function returns a flat `dict[str, float]`; on its own, `chance` looks like a score and `num_closed` like
a very good one. Each benchmark therefore declares its metrics (`Benchmark.metric_specs`, and `Judge.metric_specs`,
`Ensemble.metric_specs` for what a judge or an ensemble adds), in the spirit of lm-evaluation-harness's
`higher_is_better`, kept small. Each metric has one kind:

- `score`: the model's result on the benchmark (a share from 0 to 1, unless declared `percent`); the only kind the
  Hub `model-index` publishes;
- `baseline`: a reference level to read a score against, not the model's result: the accuracy of guessing
  (`chance`), the judge's score of the reference answer (`reference_score`); `baseline_for` names the metric it
  is a baseline of;
- `count`: a number of things (items, failures, unparsable answers), printed as an integer;
- `diagnostic`: anything else worth showing that is not a result (e.g. the share of answers naming no choice).

A declaration's key is a metric name, or a pattern with `*` (`fnmatch`) for a family of names such as
`closed_accuracy/*` or `n_*`; an exact name wins over patterns, and patterns are tried in declaration order.
A metric nobody declared is a `diagnostic` (a `count` when its name reads like one: `n`, `count`, `total`, `n_*`,
`num_*`): it is shown, but never published as a score, so a plugin that declares nothing still works and publishes
no results it did not vouch for.

The evaluate stage and `llava-adapt eval` write the declarations of the metrics they report into `metrics.json`
(`metric_specs`, only the declared names, and `primary_metric`), so that readers (model card, report, `eval`
output) need no plugin: `read_specs` reads them back, `spec_of` applies the fallback, `format_metric` prints a
value the way its kind reads (counts as integers, scores with four decimals, percentages with two).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal, get_args

MetricKind = Literal["score", "baseline", "count", "diagnostic"]
KINDS: tuple[str, ...] = get_args(MetricKind)
SPECS_KEY = "metric_specs"  # the metrics.json keys the declarations are written under
PRIMARY_KEY = "primary_metric"
_COUNT_NAME = re.compile(r"^(n|count|total|n_.+|num_.+)$")


@dataclass(frozen=True)
class MetricSpec:
    """The meaning of one metric (or of a family of metrics, when declared under a `*` pattern).

    Args:
        kind (`str`, defaults to `"score"`): `"score"`, `"baseline"`, `"count"` or `"diagnostic"` (module docstring).
        higher_is_better (`bool`, defaults to `True`): the direction of improvement (`False` for e.g. failures).
        percent (`bool`, defaults to `False`): the value is a percentage (0–100, e.g. ScienceQA's accuracy, a judge's
            relative score) rather than a share from 0 to 1.
        primary (`bool`, defaults to `False`): the benchmark's headline score (a `score`); a benchmark declares at
            most one, and its judge at most one. When both are present the judge's is the primary.
        baseline_for (`str`, *optional*): for a `baseline`, the metric it is the reference level of (e.g. `chance`
            is the baseline of `accuracy`).
        description (`str`, defaults to `""`): one line on what it measures.
    """

    kind: MetricKind = "score"
    higher_is_better: bool = True
    percent: bool = False
    primary: bool = False
    baseline_for: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"metric kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.primary and self.kind != "score":
            raise ValueError(f"a primary metric must be a score, not a {self.kind}")
        if self.baseline_for is not None and self.kind != "baseline":
            raise ValueError(f"baseline_for is for baselines, not for a {self.kind}")

    def to_json(self) -> dict[str, Any]:
        """The fields that differ from the defaults, for `metrics.json`."""
        defaults = asdict(MetricSpec())
        return {key: value for key, value in asdict(self).items() if key == "kind" or value != defaults[key]}

    @classmethod
    def from_json(cls, data: object) -> MetricSpec | None:
        """A spec from its `metrics.json` form, or `None` when it is not one (the metric is then undeclared)."""
        if not isinstance(data, dict):
            return None
        fields = {key: data[key] for key in asdict(cls()) if key in data}
        try:
            return cls(**fields)
        except (TypeError, ValueError):
            return None


# What the core adds to every benchmark's metrics.
CORE_SPECS: dict[str, MetricSpec] = {"num_items": MetricSpec(kind="count", description="questions scored")}


def declared_spec(name: str, specs: Mapping[str, MetricSpec]) -> MetricSpec | None:
    """The declaration of metric `name`: its exact key, else the first matching `*` pattern; `None` if none.

    Args:
        name (`str`): a metric name, e.g. `closed_accuracy/CT`.
        specs (`Mapping[str, MetricSpec]`): declarations, by name or pattern.
    """
    if name in specs:
        return specs[name]
    return next((spec for key, spec in specs.items() if "*" in key and fnmatch.fnmatchcase(name, key)), None)


def undeclared_spec(name: str) -> MetricSpec:
    """What an undeclared metric is taken to be: a `count` when its name reads like one, else a `diagnostic`."""
    kind: MetricKind = "count" if _COUNT_NAME.match(name.rsplit("/", 1)[-1]) else "diagnostic"
    return MetricSpec(kind=kind, description="not declared by the benchmark")


def spec_of(name: str, specs: Mapping[str, MetricSpec]) -> MetricSpec:
    """The declaration of metric `name`, or the undeclared fallback (`undeclared_spec`)."""
    return declared_spec(name, specs) or undeclared_spec(name)


def benchmark_specs(benchmark: Any) -> dict[str, MetricSpec]:
    """Everything a benchmark declares: the core's (`num_items`), its judge's, its own, its ensemble's, in that
    order (the order in which a primary is chosen).

    Args:
        benchmark (`llava_adapt.domain.Benchmark`): the benchmark.
    """
    specs = dict(CORE_SPECS)
    for part in (benchmark.judge, benchmark, benchmark.ensemble):
        if part is not None:
            specs.update(part.metric_specs)
    return specs


def resolve_specs(specs: Mapping[str, MetricSpec], names: Iterable[str]) -> tuple[dict[str, MetricSpec], str | None]:
    """The declarations of the metrics a run reported, by exact name, and its primary metric.

    Args:
        specs (`Mapping[str, MetricSpec]`): declarations, by name or pattern (`benchmark_specs`).
        names (`Iterable[str]`): the metric names reported.

    Returns:
        The declared names with their specs (undeclared names are left out), `primary` set on the primary only, and
        the primary's name: the first declared primary, in declaration order, that was reported (`None` if none).
    """
    names = list(dict.fromkeys(names))
    found = {name: spec for name in names if (spec := declared_spec(name, specs)) is not None}
    primary = None
    for key, spec in specs.items():
        if spec.primary:
            primary = next((n for n in names if n in found and (n == key or fnmatch.fnmatchcase(n, key))), None)
            if primary is not None:
                break
    resolved = {name: replace(spec, primary=name == primary) for name, spec in found.items()}
    return resolved, primary


def specs_record(specs: Mapping[str, MetricSpec], *scores: Mapping[str, Any] | None) -> dict[str, Any]:
    """What `metrics.json` carries about the metrics in `scores` (each model's metric dict): `metric_specs` (the
    declared names, in their JSON form, the core's `num_items` included) and `primary_metric` (a name, or `None`)."""
    names = [name for group in scores if group for name in group]
    resolved, primary = resolve_specs({**CORE_SPECS, **specs}, ["num_items", *names])
    return {SPECS_KEY: {name: spec.to_json() for name, spec in resolved.items()}, PRIMARY_KEY: primary}


def read_specs(data: Mapping[str, Any]) -> tuple[dict[str, MetricSpec], str | None]:
    """The declarations and the primary metric a `metrics.json` object carries (empty and `None` when it carries
    none: a file from before declarations, or a plugin that declares nothing)."""
    raw = data.get(SPECS_KEY)
    specs = {}
    if isinstance(raw, dict):
        specs = {str(name): spec for name, value in raw.items() if (spec := MetricSpec.from_json(value)) is not None}
    primary = data.get(PRIMARY_KEY)
    return specs, primary if isinstance(primary, str) and primary in specs else None


def load_specs(benchmark_dir: Path) -> tuple[dict[str, MetricSpec], str | None]:
    """`read_specs` of `benchmark_dir/metrics.json` (an evaluated benchmark's folder, `eval/<benchmark>/`); empty
    and `None` when the file is missing or unreadable."""
    try:
        data = json.loads((Path(benchmark_dir) / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}, None
    return read_specs(data) if isinstance(data, dict) else ({}, None)


def format_metric(value: float, spec: MetricSpec) -> str:
    """A metric value as printed: a count as an integer (`151`), a percentage with two decimals (`88.17`), anything
    else with four (`0.7500`) — the same precision for a share and a percentage."""
    if spec.kind == "count":
        return str(int(value)) if float(value).is_integer() else f"{value:.4g}"
    return f"{value:.2f}" if spec.percent else f"{value:.4f}"
