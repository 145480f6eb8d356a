"""Where a medical VQA question's answer type (closed or open) comes from, and saying so when it is a guess.

Closed accuracy is computed over the closed questions, so which questions count as closed decides the number.
VQA-RAD's and SLAKE's releases give every question an official type (`answer_type: CLOSED | OPEN`); VQA-RAD's Hub
Parquet copy drops it. The loaders take the official type wherever one is available:

- in the file itself: the OSF JSON, SLAKE's JSON files, LLaVA-Med's converted test file;
- else from the side file the benchmark arguments name (`answer_type_file`): the OSF JSON or LLaVA-Med's converted
  file, matched on the question and answer text (case and spacing ignored), or a JSON object from item id
  (`vqa_rad-test-0`) to `CLOSED` / `OPEN`;

and only then fall back on the yes/no rule (closed when the answer is yes or no). On VQA-RAD's real test split the
rule calls 251 of the 451 questions closed instead of the official 272 ("Is this an MRI or a CT scan?" / "MRI" is
closed), so closed accuracy would be computed on another question set than LLaVA-Med's. Each item records where its
type came from in `meta["answer_type_source"]`; `answer_type_notes` says in `metrics.json` and the report how many
questions the rule typed. PathVQA defines its closed questions as the yes/no ones, so there the rule is official.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from llava_adapt.plugin import DataError, MetricSpec, VQAItem

from .metrics import normalize_answer, vqa_metrics, vqa_specs

AnswerType = Literal["closed", "open"]
SOURCE_KEY = "answer_type_source"  # in VQAItem.meta
OFFICIAL = "official"
RULE = "yes/no rule"


def official_type(value: Any) -> AnswerType | None:
    """`CLOSED` / `OPEN` (any case, surrounding spaces) as an answer type; `None` for anything else."""
    text = str(value or "").strip().upper()
    return {"CLOSED": "closed", "OPEN": "open"}.get(text)


def rule_type(answer: str) -> AnswerType:
    """The yes/no rule: closed when the answer is yes or no, else open."""
    return "closed" if normalize_answer(answer) in ("yes", "no") else "open"


def text_key(question: str, answer: str) -> tuple[str, str]:
    """What a question is matched on across copies of a data set: its text and its answer, case and spacing
    ignored."""
    return " ".join(str(question).lower().split()), " ".join(str(answer).lower().split())


@dataclass
class AnswerTypes:
    """Official answer types read from a side file.

    Args:
        by_id (`dict[str, AnswerType]`): by item id.
        by_text (`dict[tuple[str, str], AnswerType]`): by `text_key`; a key whose copies disagree is left out.
    """

    by_id: dict[str, AnswerType] = field(default_factory=dict)
    by_text: dict[tuple[str, str], AnswerType] = field(default_factory=dict)

    def lookup(self, item_id: str, question: str, answer: str) -> AnswerType | None:
        """The official type of one question, or `None` when the file does not have it."""
        return self.by_id.get(item_id) or self.by_text.get(text_key(question, answer))


def _row_text(row: dict[str, Any]) -> tuple[str, str] | None:
    if isinstance(row.get("conversations"), list) and len(row["conversations"]) >= 2:
        turns = row["conversations"]
        if isinstance(turns[0], dict) and isinstance(turns[1], dict):
            return str(turns[0].get("value", "")).replace("<image>", ""), str(turns[1].get("value", ""))
        return None
    if row.get("question") is not None and row.get("answer") is not None:
        return str(row["question"]), str(row["answer"])
    return None


def read_answer_types(path: Path) -> AnswerTypes:
    """Read an answer-type side file (see the module docstring for the formats).

    Args:
        path (`Path`): the JSON file.

    Raises:
        DataError: the file is not JSON, or holds neither a list of typed questions nor an id → type object.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"answer_type_file {path}: cannot read it as JSON ({exc})") from None
    types = AnswerTypes()
    if isinstance(data, dict):
        for key, value in data.items():
            kind = official_type(value)
            if kind is None:
                raise DataError(f"answer_type_file {path}: {key!r} has type {value!r}; expected CLOSED or OPEN")
            types.by_id[str(key)] = kind
        return types
    if not isinstance(data, list):
        raise DataError(f"answer_type_file {path}: expected a JSON list of questions or an object id -> type")
    conflicts: set[tuple[str, str]] = set()
    for row in data:
        text = _row_text(row) if isinstance(row, dict) else None
        kind = official_type(row.get("answer_type")) if text is not None else None
        if kind is None:
            continue
        key = text_key(*text)
        if types.by_text.setdefault(key, kind) != kind:
            conflicts.add(key)
    for key in conflicts:
        del types.by_text[key]
    if not types.by_text:
        raise DataError(
            f"answer_type_file {path}: no question with an answer_type (CLOSED/OPEN) in it; give the OSF JSON, "
            "LLaVA-Med's converted test file, or an object from item id to CLOSED/OPEN"
        )
    return types


def answer_type_notes(items: Sequence[VQAItem]) -> list[str]:
    """What `metrics.json` and the report say about the items' answer types (`Benchmark.notes`): nothing when every
    type is official, else how many questions the yes/no rule typed, per type."""
    guessed = [item for item in items if item.meta.get(SOURCE_KEY) == RULE]
    if not guessed:
        return []
    closed = sum(item.answer_type == "closed" for item in guessed)
    return [
        f"No official answer type for {len(guessed)} of {len(items)} questions: the yes/no rule typed them "
        f"({closed} closed, {len(guessed) - closed} open), so closed accuracy may be computed on another question "
        "set than the official one. Name the OSF JSON or LLaVA-Med's converted test file in the benchmark's "
        "answer_type_file argument to use the official types."
    ]


def typed_vqa_metrics(items: Sequence[VQAItem], predictions: Sequence[str]) -> dict[str, float]:
    """`vqa_metrics`, plus `n_closed_by_rule` and `n_open_by_rule` (how many questions of each type the yes/no
    rule typed) when it typed any (`Benchmark.metrics` of `vqa_rad`, `slake` and `path_vqa`)."""
    scores = vqa_metrics(items, predictions)
    guessed = [item for item in items if item.meta.get(SOURCE_KEY) == RULE]
    if guessed:
        scores["n_closed_by_rule"] = float(sum(item.answer_type == "closed" for item in guessed))
        scores["n_open_by_rule"] = float(len(guessed) - scores["n_closed_by_rule"])
    return scores


# What `typed_vqa_metrics` returns.
TYPED_VQA_SPECS: dict[str, MetricSpec] = {
    **vqa_specs(),
    "n_closed_by_rule": MetricSpec(kind="count", description="questions the yes/no rule typed closed"),
    "n_open_by_rule": MetricSpec(kind="count", description="questions the yes/no rule typed open"),
}
