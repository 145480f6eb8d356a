"""Read a LLaVA-converted ScienceQA file (`llava_test_QCM-LEA.json`, `llava_test_CQM-A.json`, ...) as questions.

Such a file (written by LLaVA's `scripts/convert_sqa_to_llava.py`) is a JSON list of
`{"id": pid, "image": "<pid>/image.png" (absent for text-only), "conversations": [human, gpt]}`. The question put to
the model is the human turn without `<image>`, stripped — exactly what LLaVA's `model_vqa_science.py` sends. The
choices come from its `Options: (A) ... (B) ...` line.

The gold answer is the one LLaVA scores against: the problem's `answer` in a `problems.json` next to the file
(`eval_science_qa.py` reads it there). Without one, it is read from the gpt turn — never with the model-answer
parser, which would take `B` from `"B. Franklin flew a kite. The answer is C."`: the letter of the last
`The answer is X.` (LLaVA's `LEA`/`A` outputs), else of the last `ANSWER: X.` (`LEPA`), else the whole turn when it
is a single letter. A turn with none of these, or whose letter is not one of the options, is skipped and counted
(`no gold answer in the assistant turn`, `gold answer is not an option`) rather than stopping the run.

The category fields (subject, grade, hint, image) are not in the file either: they too come from that
`problems.json`; without it only the overall accuracy can be reported. Images are looked up as
`images/<split>/<image>`, `images/<image>`, then `<image>` next to the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llava_adapt.plugin import Skip

from .images import find_image
from .layouts import LayoutError, load_json
from .problems import OPTIONS, Problem, problem_from_mapping

OPTION_PATTERN = re.compile(r"\(([A-E])\) ")
ANSWER_PATTERN = re.compile(r"The answer is ([A-E])\.")
LEPA_PATTERN = re.compile(r"ANSWER: ([A-E])\.")
NO_GOLD = "no gold answer in the assistant turn"
NOT_AN_OPTION = "gold answer is not an option"


@dataclass(frozen=True)
class LlavaQuestion:
    """One question of a LLaVA-converted file.

    Args:
        pid (`str`): the problem id.
        question (`str`): the human turn without `<image>`, stripped.
        choices (`list[str]`): the options parsed from the question.
        answer (`int`): the gold answer index (from `problems.json`, else from the gpt turn).
        image (`Path | None`): the image file, `None` for a text-only question.
        problem (`Problem | None`): the matching entry of a `problems.json` next to the file, if any.
    """

    pid: str
    question: str
    choices: list[str]
    answer: int
    image: Path | None
    problem: Problem | None


def parse_choices(question: str, where: str) -> list[str]:
    """The option texts of the `Options: (A) x (B) y` line of a rendered question."""
    lines = [line for line in question.splitlines() if line.startswith("Options: ")]
    if not lines:
        raise LayoutError(f"{where}: the question has no 'Options:' line")
    body = lines[-1][len("Options: ") :]
    parts = OPTION_PATTERN.split(body)  # ["", "A", "x ", "B", "y"]
    letters, texts = parts[1::2], [t.strip() for t in parts[2::2]]
    if letters != list(OPTIONS[: len(letters)]) or len(letters) < 2:
        raise LayoutError(f"{where}: cannot read the options from {body!r}")
    return texts


def gold_letter(turn: str) -> str | None:
    """The gold letter written in a LLaVA gpt turn (see the module docstring), or `None` when it names none."""
    for pattern in (ANSWER_PATTERN, LEPA_PATTERN):
        found = pattern.findall(turn)
        if found:
            return found[-1]
    text = turn.strip()
    return text if text in OPTIONS else None


def read_llava_json(path: Path, split: str) -> Iterator[LlavaQuestion | Skip]:
    """Yield the questions of a LLaVA-converted ScienceQA JSON file.

    Args:
        path (`Path`): the JSON file.
        split (`str`): the split it holds (used to find images and `problems.json` entries).

    Raises:
        LayoutError: a malformed file or entry, naming the file and the entry.
    """
    data = load_json(path)
    if not isinstance(data, list):
        raise LayoutError(f"{path}: expected a JSON list of LLaVA conversation records")
    folder = path.parent
    problems: dict[str, Any] = {}
    if (folder / "problems.json").is_file():
        problems = load_json(folder / "problems.json")
    for n, entry in enumerate(data):
        where = f"{path}: entry {n}"
        try:
            pid = str(entry["id"])
            human, gpt = entry["conversations"][0]["value"], entry["conversations"][1]["value"]
        except (KeyError, IndexError, TypeError):
            raise LayoutError(f"{where}: needs 'id' and two 'conversations' turns with 'value'") from None
        question = human.replace("<image>", "").strip()
        choices = parse_choices(question, f"{where} (id {pid!r})")
        problem = problem_from_mapping(problems[pid], pid, str(folder / "problems.json")) if pid in problems else None
        if problem is not None:
            answer = problem.answer
        else:
            letter = gold_letter(str(gpt))
            if letter is None:
                yield Skip(id=pid, reason=NO_GOLD)
                continue
            answer = OPTIONS.index(letter)
        if answer >= len(choices):
            yield Skip(id=pid, reason=NOT_AN_OPTION)
            continue
        image = None
        if entry.get("image"):
            name = str(entry["image"])
            image, reason = find_image(folder, [f"images/{split}/{name}", f"images/{name}", name])
            if image is None:
                yield Skip(id=pid, reason=reason or "image file missing")
                continue
        yield LlavaQuestion(pid, question, choices, answer, image, problem)
