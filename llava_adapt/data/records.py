"""The typed records that flow between pipeline stages.

Every stage reads and writes these as JSON Lines (one record per line, see `llava_adapt.data.jsonl`):

- `CaptionRecord`: one image and its caption (stage-1 data, and the input of instruction generation);
- `Conversation`: one image and a multi-turn conversation in LLaVA's JSON format (stage-2 data);
- `VQAItem`: one benchmark question about an image with its reference answer (evaluation data);
- `Skip`: what a source yields instead of a record it could not use, with the reason (counted in the manifest).

Image paths are relative to the folder the record file describes (its data root); they never point outside it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, StrictFloat, StrictInt, StrictStr, ValidationError

HUMAN = "human"
GPT = "gpt"

Scalar = StrictStr | StrictInt | StrictFloat  # a context or label value; numbers become text, lists and objects do not


class RecordError(ValueError):
    """A row is not a valid record: a field is missing or has the wrong JSON type. The message names each field and
    what it got (`caption: expected text, got a list`)."""


class _CaptionRow(BaseModel):
    """What a `CaptionRecord` row must hold, type for type (never stringified: a list is not a caption)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    id: StrictStr | StrictInt  # an integer id (COCO's) is written as text; an object is refused
    image: StrictStr
    caption: StrictStr
    context: dict[StrictStr, Scalar] | None = None
    labels: dict[StrictStr, Scalar] | None = None


_JSON_TYPES = {dict: "an object", list: "a list", str: "text", int: "a number", float: "a number", bool: "true/false"}
_EXPECTED = {"string": "text", "int": "an integer", "float": "a number", "dict": "an object", "bool": "true/false"}


def validation_problems(exc: ValidationError) -> str:
    """One line from a pydantic `ValidationError` over a JSON row: `caption: expected text, got a list; ...`."""
    expected: dict[str, list[str]] = {}
    got: dict[str, str] = {}
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"] if part not in ("str", "int", "float"))
        if error["type"] == "missing":
            expected[where], got[where] = [], "missing"
            continue
        kind = next((name for key, name in _EXPECTED.items() if error["type"].startswith(key)), error["msg"])
        expected.setdefault(where, []).append(kind)
        value = error.get("input")
        got[where] = "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)
    return "; ".join(
        f"missing field {where!r}"
        if got[where] == "missing"
        else f"{where}: expected {' or '.join(kinds)}, got {got[where]}"
        for where, kinds in expected.items()
    )


@dataclass(frozen=True)
class CaptionRecord:
    """One image–caption pair.

    Args:
        id (`str`): unique id within the data set.
        image (`str`): image path relative to the data root.
        caption (`str`): the caption (figure caption, report impression, alt text, ...).
        context (`dict[str, str]`, defaults to `{}`): extra text that a domain may allow into the
            instruction-generation prompt (in-text mentions, normalised boxes, modality, body part, ...).
            Only the keys on the domain's allow-list ever reach a prompt.
        labels (`dict[str, str]`, defaults to `{}`): structured labels (e.g. `{"finding": "nodule"}`) used by the
            offline generator and by synthetic benchmarks. Never sent to an API unless also in `context`.
    """

    id: str
    image: str
    caption: str
    context: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaptionRecord:
        """The record a JSON row holds, its types checked (an integer id becomes text; nothing else is converted).

        Raises:
            RecordError: a field is missing or of the wrong type (the message names each).
        """
        try:
            row = _CaptionRow.model_validate(data)
        except ValidationError as exc:
            raise RecordError(validation_problems(exc)) from None
        return cls(
            id=str(row.id),
            image=row.image,
            caption=row.caption,
            context={k: str(v) for k, v in (row.context or {}).items()},
            labels={k: str(v) for k, v in (row.labels or {}).items()},
        )

    def problem(self) -> str | None:
        """Why this record (as a source built it) cannot be used, as a skip reason; `None` when it can.

        A source that copies a JSON value without checking it may hand over a list for a caption or an object for
        an id: that is a skip (`"caption is not text"`), never a stringified `"['...']"`.
        """
        for name in ("id", "image", "caption"):
            if not isinstance(getattr(self, name), str):
                return f"{name} is not text"
        for name in ("context", "labels"):
            values = getattr(self, name)
            if not isinstance(values, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in values.items()
            ):
                return f"{name} is not a mapping of text"
        return None


@dataclass(frozen=True)
class Conversation:
    """One stage-2 sample in LLaVA's JSON conversation format.

    Args:
        id (`str`): unique id.
        image (`str | None`): image path relative to the data root, `None` for a text-only sample.
        conversations (`list[dict[str, str]]`): turns `{"from": "human" | "gpt", "value": str}`, starting with a
            human turn; the first human turn of an image sample contains `<image>`.
        source (`str`, defaults to `""`): where the sample came from (a prompt type, "offline", a task name).
    """

    id: str
    image: str | None
    conversations: list[dict[str, str]]
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id}
        if self.image is not None:
            data["image"] = self.image
        data["conversations"] = [{"from": t["from"], "value": t["value"]} for t in self.conversations]
        if self.source:
            data["source"] = self.source
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Conversation:
        return cls(
            id=str(data["id"]),
            image=data.get("image"),
            conversations=[{"from": str(t["from"]), "value": str(t["value"])} for t in data["conversations"]],
            source=str(data.get("source", "")),
        )


@dataclass(frozen=True)
class VQAItem:
    """One benchmark question.

    Args:
        id (`str`): unique id within the benchmark.
        image (`str`): image path relative to the benchmark's data root.
        question (`str`): the question, without any `<image>` placeholder.
        answer (`str`): the reference answer.
        answer_type (`"closed" | "open"`): closed = a fixed answer set (yes/no, multiple choice), open = free text.
        choices (`list[str]`, defaults to `[]`): the candidate answers of a closed question, when known.
        meta (`dict[str, Any]`, defaults to `{}`): benchmark-specific fields used by its metrics (subject, grade,
            modality, ...).
    """

    id: str
    image: str
    question: str
    answer: str
    answer_type: Literal["closed", "open"]
    choices: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VQAItem:
        answer_type = data["answer_type"]
        if answer_type not in ("closed", "open"):
            raise ValueError(f"answer_type must be 'closed' or 'open', got {answer_type!r}")
        return cls(
            id=str(data["id"]),
            image=str(data["image"]),
            question=str(data["question"]),
            answer=str(data["answer"]),
            answer_type=answer_type,
            choices=[str(c) for c in data.get("choices") or []],
            meta=dict(data.get("meta") or {}),
        )


@dataclass(frozen=True)
class Skip:
    """A record a source could not use. The pipeline counts skips per reason in the manifest.

    Args:
        id (`str`): the id (or file name) of what was skipped.
        reason (`str`): a short, stable reason, e.g. `"corrupt image"`, `"burned-in annotation"`.
    """

    id: str
    reason: str
