"""The biomed domain's prompt-side callables: the generator context, the offline generator and the leak filter.

- `build_context(record)` writes the user message of LLaVA-Med's instruction-generation prompt: the figure caption
  (with its label), the in-text mentions ("Figure Context", the 60K-IM variant) and the allow-listed image
  metadata. Nothing else from the record — in particular no `labels` — ever reaches it.
- `offline_generator(record, prompt_type, rng)` writes a LLaVA-Med-style multi-turn conversation without any
  network: question/answer turns over the record's labels (lesion, side, modality, body part, finding), and a
  description turn that answers with the caption. The first human turn starts with `"<image>\\n"`.
- `LEAK_PATTERNS` catch answers that betray that the teacher read text instead of seeing the image.
"""

from __future__ import annotations

import random

from llava_adapt.plugin import GPT, HUMAN, CaptionRecord

from .questions import DESCRIBE, QUESTIONS, available_kinds, full_answer

# The record context keys that may reach an instruction-generation prompt (`Domain.context_fields`).
CONTEXT_FIELDS: tuple[str, ...] = (
    "figure_label",
    "in_text_mentions",
    "modality",
    "body_part",
    "view",
    "study_description",
)

_METADATA_NAMES = {"modality": "Modality", "body_part": "Body part", "view": "View", "study_description": "Study"}

# Phrases LLaVA-Med's post-processing strips or drops, as case-insensitive regular expressions.
LEAK_PATTERNS: tuple[str, ...] = (
    r"(?i)\b(the|this|figure's|image's) (figure )?caption\b",
    r"(?i)\bcaption (says|states|mentions|describes|indicates|notes|reads)\b",
    r"(?i)\b(based on|according to|from|given) the (provided |given |above |available )?"
    r"(context|caption|description|text|information|figure context|figure caption)\b",
    r"(?i)\b(mentioned|described|stated|noted|referenced) in the (text|caption|context|description|figure context)\b",
    r"(?i)\b(figure|provided|given) context\b",
    r"(?i)\bin-?text mentions?\b",
    r"(?i)\b(the|this) (text|description) (says|states|mentions|indicates)\b",
    r"(?i)\b(i|we) (do not|don't|cannot|can't|am unable to|are unable to) (have access to|see|view|access) "
    r"(the|this) (actual )?image\b",
    r"(?i)\bunable to (view|see) the image\b",
)


def build_context(record: CaptionRecord) -> str:
    """The instruction-generation user message for a record: caption, mentions and allow-listed metadata.

    Args:
        record (`CaptionRecord`): the record; only `caption` and the `CONTEXT_FIELDS` keys of `context` are used.
    """
    context = {k: v for k, v in record.context.items() if k in CONTEXT_FIELDS and v.strip()}
    label = context.get("figure_label", "").strip()
    parts = [f"Figure Caption:\n{label + ': ' if label else ''}{record.caption.strip()}"]
    mentions = [m.strip() for m in context.get("in_text_mentions", "").splitlines() if m.strip()]
    if mentions:
        parts.append("Figure Context:\n" + "\n".join(f"\t- {m}" for m in mentions))
    metadata = [f"\t- {name}: {context[key]}" for key, name in _METADATA_NAMES.items() if key in context]
    if metadata:
        parts.append("Image Information:\n" + "\n".join(metadata))
    return "\n\n".join(parts)


def offline_generator(record: CaptionRecord, prompt_type: str, rng: random.Random) -> list[dict[str, str]]:
    """Write a conversation about a record without calling any model.

    Args:
        record (`CaptionRecord`): the record (its caption and labels are used).
        prompt_type (`str`): the instruction type; one containing `"detail"` gives a single description turn,
            any other (e.g. `"conversation"`) gives two to four question/answer turns.
        rng (`random.Random`): chooses phrasings and the order of the questions.

    Returns:
        `list[dict[str, str]]`: LLaVA turns `{"from": "human" | "gpt", "value": str}`, the first human turn starting
        with `"<image>\\n"`.
    """
    pairs: list[tuple[str, str]] = []
    if "detail" in prompt_type:
        pairs.append((rng.choice(DESCRIBE), record.caption.strip()))
    else:
        kinds = available_kinds(record.labels)
        rng.shuffle(kinds)
        pairs = [(rng.choice(QUESTIONS[kind]), full_answer(kind, record.labels)) for kind in kinds[:4]]
        if len(pairs) < 2 or rng.random() < 0.3:
            pairs.insert(rng.randrange(len(pairs) + 1), (rng.choice(DESCRIBE), record.caption.strip()))
    turns: list[dict[str, str]] = []
    for question, answer in pairs:
        prefix = "<image>\n" if not turns else ""
        turns.append({"from": HUMAN, "value": prefix + question})
        turns.append({"from": GPT, "value": answer})
    return turns
