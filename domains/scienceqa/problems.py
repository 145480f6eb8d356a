"""One ScienceQA problem, validated, whatever layout it was read from.

ScienceQA (Lu et al., 2022) stores each problem as a JSON object (`problems.json` in the lupantech layout, one row
in the Hugging Face parquet files) with the keys below. `problem_from_mapping` checks them and raises an error that
names the file, the problem and the key when one is missing or has the wrong type: a malformed problem means a
broken download, and silently dropping it would change the denominator of every published accuracy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llava_adapt.plugin import DataError

OPTIONS = ("A", "B", "C", "D", "E")
"""The option letters. ScienceQA problems have 2 to 5 choices; LLaVA's scorer knows exactly these five letters."""

SUBJECTS = {"natural science": "NAT", "social science": "SOC", "language science": "LAN"}
LOWER_GRADES = tuple(f"grade{g}" for g in range(1, 7))
UPPER_GRADES = tuple(f"grade{g}" for g in range(7, 13))

TEXT_FIELDS = ("task", "grade", "subject", "topic", "category", "skill", "lecture", "solution")


class ProblemError(DataError, ValueError):
    """A ScienceQA problem is malformed. The message names the file, the problem id and the key."""


@dataclass(frozen=True)
class Problem:
    """One ScienceQA question.

    Args:
        pid (`str`): the problem id (the `problems.json` key, or `"{split}_{row}"` for parquet rows, which have none).
        question (`str`): the question.
        choices (`tuple[str, ...]`): 2 to 5 candidate answers, lettered A–E in order.
        answer (`int`): index of the correct choice.
        hint (`str`, defaults to `""`): the textual context ("TXT" when non-empty).
        has_image (`bool`, defaults to `False`): whether the problem has an image ("IMG"); decided by the source
            data (`image` non-null), not by whether the file could be found.
        image_path (`str | None`, defaults to `None`): where the image is, relative to the dataset folder.
        image_bytes (`bytes | None`, defaults to `None`): the encoded image, for layouts that embed it (parquet).
        task, grade, subject, topic, category, skill, lecture, solution (`str`, default `""`): ScienceQA metadata.
        split (`str`, defaults to `""`): the split the problem belongs to.
    """

    pid: str
    question: str
    choices: tuple[str, ...]
    answer: int
    hint: str = ""
    has_image: bool = False
    image_path: str | None = None
    image_bytes: bytes | None = None
    task: str = ""
    grade: str = ""
    subject: str = ""
    topic: str = ""
    category: str = ""
    skill: str = ""
    lecture: str = ""
    solution: str = ""
    split: str = ""

    @property
    def answer_letter(self) -> str:
        return OPTIONS[self.answer]

    def meta(self) -> dict[str, Any]:
        """The fields the metrics group by (JSON-serialisable), as stored in `VQAItem.meta`."""
        return {
            "pid": self.pid,
            "answer_index": self.answer,
            "subject": self.subject,
            "grade": self.grade,
            "topic": self.topic,
            "category": self.category,
            "skill": self.skill,
            # `tools/evaluate_acc.py` tests the raw fields' truthiness: a hint of "" is no text context.
            "has_hint": bool(self.hint),
            "has_image": self.has_image,
            "split": self.split,
        }


def _require(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise ProblemError(f"{where}: missing key {key!r}")
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ProblemError(f"{where}: key {key!r} must be {names}, got {type(value).__name__}")
    return value


def problem_from_mapping(
    data: Any,
    pid: str,
    where: str,
    *,
    image_path: str | None = None,
    image_bytes: bytes | None = None,
    has_image: bool | None = None,
    split: str = "",
) -> Problem:
    """Validate one raw ScienceQA problem and return it.

    Args:
        data (`Any`): the raw problem (a mapping with `question`, `choices`, `answer`, optional metadata).
        pid (`str`): its id.
        where (`str`): the file it came from, for error messages.
        image_path (`str | None`, defaults to `None`): the image location the layout reader worked out.
        image_bytes (`bytes | None`, defaults to `None`): the embedded image, for parquet rows.
        has_image (`bool | None`, defaults to `None`): whether the problem has an image; `None` = the `image` field
            is non-null.
        split (`str`, defaults to `""`): the split, when the layout knows it (else the problem's `split` field).

    Raises:
        ProblemError: naming `where`, the problem id and the offending key.
    """
    here = f"{where}: problem {pid!r}"
    if not isinstance(data, Mapping):
        raise ProblemError(f"{here}: expected a JSON object, got {type(data).__name__}")
    question = _require(data, "question", str, here)
    choices = _require(data, "choices", (list, tuple), here)
    if not 2 <= len(choices) <= len(OPTIONS):
        raise ProblemError(f"{here}: key 'choices' has {len(choices)} entries; ScienceQA problems have 2 to 5")
    if not all(isinstance(c, str) for c in choices):
        raise ProblemError(f"{here}: key 'choices' must be a list of strings")
    answer = _require(data, "answer", int, here)
    if not 0 <= answer < len(choices):
        raise ProblemError(f"{here}: key 'answer' is {answer}, outside the {len(choices)} choices")
    hint = data.get("hint") or ""
    if not isinstance(hint, str):
        raise ProblemError(f"{here}: key 'hint' must be a string or null, got {type(hint).__name__}")
    text: dict[str, str] = {}
    for key in TEXT_FIELDS:
        value = data.get(key) or ""
        if not isinstance(value, str):
            raise ProblemError(f"{here}: key {key!r} must be a string or null, got {type(value).__name__}")
        text[key] = value
    if has_image is None:
        has_image = bool(data.get("image"))
    return Problem(
        pid=pid,
        question=question,
        choices=tuple(choices),
        answer=answer,
        hint=hint,
        has_image=has_image,
        image_path=image_path,
        image_bytes=image_bytes,
        split=split or str(data.get("split") or ""),
        **text,
    )
