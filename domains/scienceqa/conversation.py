"""What instruction generation sees of a ScienceQA record, and the offline generator's conversations.

- `build_context` writes the user message of the GPT-4 prompt from the allow-listed `CONTEXT_FIELDS` only::

      Question: Which figure of speech is used in this text?
      Context: N/A
      Options: (A) hyperbole (B) onomatopoeia
      Answer: (B) onomatopoeia
      Lecture: Figures of speech are words or phrases that use language in a nonliteral way ...
      Solution: The text uses onomatopoeia, a word that expresses a sound ...

  (the few-shot `NNN_context.txt` files under `prompts/` use the same shape).
- `offline_generator` needs no network: it writes LLaVA's own ScienceQA training conversation for the record —
  the question in LLaVA's QCM format with LLaVA-1.5's letter instruction, answered with the letter (exactly what
  the `scienceqa` benchmark asks), then, when the problem has a lecture or a solution, a follow-up asking why,
  answered in LLaVA's `LEA` format (`{lecture} {solution} The answer is X.`). The follow-up's wording is drawn with
  `rng`; everything else is fixed, so the result is deterministic in the generator's seed.
- `LEAK_PATTERNS` reject generated answers that quote the teacher's text sources instead of explaining.
"""

from __future__ import annotations

import json
import random

from llava_adapt.plugin import CaptionRecord, DataError

from .render import SINGLE_PRED_PROMPT, render_input, render_output

CONTEXT_FIELDS = ("question", "hint", "options", "answer", "lecture", "solution")
CONTEXT_LABELS = {
    "question": "Question",
    "hint": "Context",
    "options": "Options",
    "answer": "Answer",
    "lecture": "Lecture",
    "solution": "Solution",
}
LEAK_PATTERNS = (
    r"(?i)\baccording to the (lecture|solution|hint|caption|context|provided text)\b",
    r"(?i)\b(the|this) (lecture|solution|hint|caption) (says|states|mentions|explains|notes)\b",
    r"(?i)\b(based on|from) the (provided|given) (lecture|solution|hint|text|context|information|description)\b",
    r"(?i)\bI (cannot|can't|can not|don't|do not) (see|view|access) the (image|picture|figure)\b",
    r"(?i)\bwithout (seeing|access to|viewing) the (image|picture|figure)\b",
)
FOLLOW_UPS = (
    "Why is that the answer?",
    "Can you explain your answer?",
    "Explain how you got that answer.",
    "What is the reasoning behind this answer?",
)
REQUIRED_LABELS = ("question", "choices", "answer")


def build_context(record: CaptionRecord) -> str:
    """The user message of the instruction-generation prompt: allow-listed context fields only, one per line.

    Args:
        record (`CaptionRecord`): a record of the `problems` or `synthetic` source. Without a `question` in its
            context, the caption stands in for it.
    """
    fields = dict(record.context)
    fields.setdefault("question", record.caption)
    lines = []
    for key in CONTEXT_FIELDS:
        value = str(fields.get(key, "")).strip()
        if value:
            lines.append(f"{CONTEXT_LABELS[key]}: {value}")
    return "\n".join(lines)


def offline_generator(record: CaptionRecord, prompt_type: str, rng: random.Random) -> list[dict[str, str]]:
    """LLaVA's ScienceQA conversation for a record, without any network (see the module docstring).

    Args:
        record (`CaptionRecord`): a record whose `labels` carry `question`, `choices` (JSON list), `answer` (letter),
            and optionally `hint`, `lecture`, `solution`.
        prompt_type (`str`): the instruction type being generated; every type gets the same ScienceQA
            conversation (the type only matters for the GPT-4 prompts).
        rng (`random.Random`): picks the follow-up question's wording.

    Raises:
        DataError: the record lacks a required label or its labels are malformed (naming the record).
    """
    labels = record.labels
    missing = [key for key in REQUIRED_LABELS if not labels.get(key)]
    if missing:
        raise DataError(
            f"scienceqa offline generator: record {record.id!r} has no label(s) {', '.join(missing)} "
            "(records of the scienceqa 'problems' or 'synthetic' source carry them)"
        )
    try:
        choices = json.loads(labels["choices"])
    except json.JSONDecodeError:
        raise DataError(f"scienceqa offline generator: record {record.id!r}: label 'choices' is not JSON") from None
    if not isinstance(choices, list) or not 2 <= len(choices) <= 5:
        raise DataError(f"scienceqa offline generator: record {record.id!r}: label 'choices' must list 2 to 5 options")
    letters = "ABCDE"[: len(choices)]
    if labels["answer"] not in letters:
        raise DataError(
            f"scienceqa offline generator: record {record.id!r}: answer {labels['answer']!r} is not one of the "
            f"{len(choices)} choices"
        )
    question = render_input(labels["question"], labels.get("hint", ""), choices, "QCM")
    turns = [
        {"from": "human", "value": f"<image>\n{question}\n{SINGLE_PRED_PROMPT}"},
        {"from": "gpt", "value": labels["answer"]},
    ]
    lecture, solution = labels.get("lecture", ""), labels.get("solution", "")
    if lecture.strip() or solution.strip():
        explanation = render_output(lecture, solution, letters.index(labels["answer"]), "LEA")
        turns += [{"from": "human", "value": rng.choice(FOLLOW_UPS)}, {"from": "gpt", "value": explanation}]
    return turns
