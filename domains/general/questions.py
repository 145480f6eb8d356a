"""Questions about the synthetic shapes: the held-out benchmark and the offline conversation generator.

The benchmark asks the closed colour question in one fixed format (`CLOSED_COLOR_PROMPT`); the generator's
`conversation` turns open with the same format, so a model trained on them is asked the way it was taught (as
LLaVA-1.5 taught short answers with "Answer the question using a single word or phrase.").
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from llava_adapt.plugin import CaptionRecord, DataError, SourceContext, VQAItem

from .shapes import COLORS, OPPOSITE, ShapesArgs, generate

COLOR_QUESTION = "What color is the shape?"
CLOSED_COLOR_PROMPT = "{question}\nAnswer with one word from: {choices}."
DESCRIBE = ("Describe the image in detail.", "What do you see in this picture?", "Describe this image.")


def load_benchmark(args: ShapesArgs, ctx: SourceContext) -> Iterator[VQAItem]:
    """The `shapes_color` benchmark: one closed colour question per held-out image, the colours as choices."""
    for image_id, name, drawn in generate(args, ctx, "heldout"):
        yield VQAItem(
            id=image_id,
            image=name,
            question=COLOR_QUESTION,
            answer=drawn.color,
            answer_type="closed",
            choices=list(COLORS),
            meta=drawn.labels(),
        )


def build_context(record: CaptionRecord) -> str:
    """The teacher's user message, laid out as LLaVA's prompts (`000_caps.txt`): the captions one per line, a blank
    line, then the boxes one per line (`person: [0.681, 0.242, 0.774, 0.694]`).

    Args:
        record (`CaptionRecord`): the allow-listed view of a record. Its `captions` context (all of an image's
            captions, from the `coco` source) is used when present, else its `caption`; `boxes` when present.
    """
    captions = record.context.get("captions") or record.caption
    boxes = record.context.get("boxes")
    return f"{captions}\n\n{boxes}" if boxes else captions


def _conversation(labels: dict[str, str], rng: random.Random) -> list[tuple[str, str]]:
    color, shape, position = labels["color"], labels["shape"], labels["position"]
    follow_ups = [
        ("What shape is it?", f"It is a {shape}."),
        ("Where is the shape?", f"The {shape} is in the {position} of the image."),
        (f"What color is the {shape}?", f"The {shape} is {color}."),
    ]
    rng.shuffle(follow_ups)
    closed = CLOSED_COLOR_PROMPT.format(question=COLOR_QUESTION, choices=", ".join(COLORS))
    return [(closed, color)] + follow_ups[: rng.randint(1, len(follow_ups))]


def _description(labels: dict[str, str], rng: random.Random) -> list[tuple[str, str]]:
    answer = (
        f"The image shows a {labels['color']} {labels['shape']} in the {labels['position']} of the picture. "
        f"The background is {labels['background']} and noisy, and nothing else is in the image."
    )
    return [(rng.choice(DESCRIBE), answer)]


def _reasoning(labels: dict[str, str], rng: random.Random) -> list[tuple[str, str]]:
    shape, position = labels["shape"], labels["position"]
    return [
        (
            "If the shape moved to the opposite corner of the image, where would it be?",
            f"The {shape} is now in the {position}, so in the opposite corner it would be in the "
            f"{OPPOSITE[position]}.",
        )
    ]


GENERATORS = {"conversation": _conversation, "detailed_description": _description, "complex_reasoning": _reasoning}


def offline_generator(record: CaptionRecord, prompt_type: str, rng: random.Random) -> list[dict[str, str]]:
    """Write LLaVA turns for a shapes record from its labels (no network).

    Args:
        record (`CaptionRecord`): a record of the `shapes` source (labels `color`, `shape`, `position`,
            `background`).
        prompt_type (`str`): `conversation`, `detailed_description` or `complex_reasoning`.
        rng (`random.Random`): the job's random generator (question choice and order).

    Raises:
        DataError: an unknown prompt type, or a record without the shape labels (one from `coco` or
            `llava_pretrain`: only a GPT-4-class teacher writes conversations for real images).
    """
    if prompt_type not in GENERATORS:
        raise DataError(
            f"general offline generator: unknown prompt type {prompt_type!r} (known: {sorted(GENERATORS)})"
        )
    missing = {"color", "shape", "position", "background"} - set(record.labels)
    if missing:
        raise DataError(
            f"record {record.id!r} lacks the shape labels {sorted(missing)}: the offline generator writes "
            "conversations for the synthetic `shapes` source only; for real images use generate.backend: openai "
            "or ready-made conversations (data.instruct_file)"
        )
    turns = []
    for i, (question, answer) in enumerate(GENERATORS[prompt_type](record.labels, rng)):
        turns.append({"from": "human", "value": f"<image>\n{question}" if i == 0 else question})
        turns.append({"from": "gpt", "value": answer})
    return turns
