"""The public API for domain plugins: this is what a plugin may import; everything else is internal and may change.

A domain plugin (built in under `llava_adapt.domains`, or a package of its own made with `llava-adapt domain new`)
imports from `llava_adapt` only this module::

    from llava_adapt.plugin import Benchmark, CaptionRecord, DataError, Domain, Skip, Source, SourceContext

What it holds:

- **the contract** (`llava_adapt.domain`): `Domain` and its parts `Source`, `Benchmark`, `Judge`, `Ensemble`,
  `SourceContext` (what a loader gets besides its arguments), `NoArgs`, the `extras` keys `HUB_DATASETS` and
  `PATIENT_IMAGES`, the callable types (`RecordLoader`, `ItemLoader`, `MetricFn`, ...) and `check_domain`, which
  the registry runs on the plugin's object (a plugin's own tests call it too);
- **records** (`llava_adapt.data.records`): `CaptionRecord` (what a source yields), `VQAItem` (a benchmark
  question), `Conversation`, `Skip` (an input a loader cannot use, with the reason), the turn roles `HUMAN`/`GPT`;
- **files**: JSON and JSON Lines readers whose errors name the file and line (`read_jsonl`, `read_json`,
  `read_json_list`, `RecordFileError`) and `write_jsonl`; Parquet rows (`parquet_rows`, `parquet_row_count`);
  LLaVA conversation records (`parse_conversation`); atomic writes (`atomic_path`, `write_text`, `write_json`:
  a killed run never leaves a half-written file under the final name);
- **paths under the data root** (`within`, `relative_to_root`, `root_path`, `OutsideRootError`): a path a data file
  names may not leave `SourceContext.data_root`;
- **metric helpers** (`llava_adapt.evaluate.metrics`): `normalize_answer`, `match_choice`, `is_correct` and
  `closed_accuracy`, the rule the built-in closed-question benchmarks score by (`CLOSED_ACCURACY_SPECS` declares
  what it returns); `MetricSpec` (`llava_adapt.evaluate.metric_spec`), how a benchmark declares what each of its
  metrics is: a score, a baseline, a count or a diagnostic;
- **errors**: `DataError`. Raise it for input the plugin cannot use as a whole (a malformed file, a wrong layout, a
  record the chosen step cannot use); the command line prints its message as one line and exits with code 2, for
  any plugin. One bad record among good ones is a `Skip` instead. Any other exception escaping a plugin is a bug
  and keeps its traceback.

A plugin package can also ship recipes: see `llava_adapt.recipe.catalog` (entry-point group `llava_adapt.recipes`).
"""

from __future__ import annotations

from llava_adapt.data.jsonl import RecordFileError, read_json, read_json_list, read_jsonl, write_jsonl
from llava_adapt.data.llava_json import parse_conversation
from llava_adapt.data.parquet import parquet_row_count, parquet_rows
from llava_adapt.data.paths import OutsideRootError, relative_to_root, root_path, within
from llava_adapt.data.records import GPT, HUMAN, CaptionRecord, Conversation, Skip, VQAItem
from llava_adapt.domain import (
    HUB_DATASETS,
    PATIENT_IMAGES,
    AskFn,
    Benchmark,
    ContextBuilder,
    Domain,
    Ensemble,
    EnsembleFn,
    ItemLoader,
    Judge,
    JudgeMessages,
    JudgeScore,
    MetricFn,
    NoArgs,
    NotesFn,
    OfflineGenerator,
    RecordCounter,
    RecordLoader,
    Source,
    SourceContext,
    check_domain,
)
from llava_adapt.errors import DataError
from llava_adapt.evaluate.metric_spec import MetricSpec
from llava_adapt.evaluate.metrics import (
    CLOSED_ACCURACY_SPECS,
    closed_accuracy,
    is_correct,
    match_choice,
    normalize_answer,
)
from llava_adapt.run.atomic import atomic_path, write_json, write_text

__all__ = [
    # the contract
    "Domain",
    "Source",
    "Benchmark",
    "Judge",
    "Ensemble",
    "SourceContext",
    "NoArgs",
    "HUB_DATASETS",
    "PATIENT_IMAGES",
    "check_domain",
    "RecordLoader",
    "RecordCounter",
    "ItemLoader",
    "MetricFn",
    "JudgeMessages",
    "JudgeScore",
    "AskFn",
    "EnsembleFn",
    "NotesFn",
    "ContextBuilder",
    "OfflineGenerator",
    # records
    "CaptionRecord",
    "Conversation",
    "VQAItem",
    "Skip",
    "HUMAN",
    "GPT",
    # files
    "read_jsonl",
    "read_json",
    "read_json_list",
    "write_jsonl",
    "RecordFileError",
    "parquet_rows",
    "parquet_row_count",
    "parse_conversation",
    "atomic_path",
    "write_text",
    "write_json",
    # paths under the data root
    "within",
    "relative_to_root",
    "root_path",
    "OutsideRootError",
    # metric helpers
    "normalize_answer",
    "match_choice",
    "is_correct",
    "closed_accuracy",
    "CLOSED_ACCURACY_SPECS",
    "MetricSpec",
    # errors
    "DataError",
]
