"""From the stage data formats to what the tokenizer sees.

- stage 1 (`align`) uses LLaVA's *plain* format: the image, then the caption, then end-of-sequence; no
  instruction, no chat template (LLaVA `preprocess_plain`);
- stage 2 (`instruct`) turns a LLaVA conversation into TRL's conversational format: `from: human/gpt` become
  `role: user/assistant`, the `<image>` placeholder becomes an `{"type": "image"}` block before the text of its
  turn, whose text is stripped (LLaVA's `preprocess_multimodal`: `"<image>\n" + text.strip()`); other turns keep
  their text as written, as LLaVA's. The same rows (plus `"images"`) are what TRL's stock VLM collator consumes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llava_adapt.data.llava_json import IMAGE_PLACEHOLDER
from llava_adapt.data.records import HUMAN, Conversation

ROLES = {HUMAN: "user", "gpt": "assistant"}


@dataclass(frozen=True)
class TrainingSample:
    """One sample before tokenization.

    Args:
        id (`str`): the record id (named in skip counts and errors).
        image (`str | None`): absolute image path, `None` for text-only samples.
        caption (`str | None`): the stage-1 caption (plain format), or `None`.
        messages (`list[dict] | None`): the stage-2 conversation in TRL's format, or `None`.
    """

    id: str
    image: str | None
    caption: str | None = None
    messages: list[dict[str, Any]] | None = None


def strip_placeholder(text: str) -> str:
    """Remove the `<image>` placeholder and the line break that joins it to the text."""
    return (
        text.replace(IMAGE_PLACEHOLDER + "\n", "")
        .replace("\n" + IMAGE_PLACEHOLDER, "")
        .replace(IMAGE_PLACEHOLDER, "")
        .strip()
    )


def conversation_to_messages(conversation: Conversation) -> list[dict[str, Any]]:
    """Convert a LLaVA conversation into TRL's conversational messages with content blocks.

    Args:
        conversation (`Conversation`): the LLaVA record (validated by `llava_adapt.data.llava_json`).

    Returns:
        `[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": ...}]}, {"role": "assistant",
        "content": [{"type": "text", "text": ...}]}, ...]`; the image block only in the turn that had `<image>`
        (its text stripped, the others as written).
    """
    messages = []
    for turn in conversation.conversations:
        content: list[dict[str, Any]] = []
        text = turn["value"]
        if IMAGE_PLACEHOLDER in text:
            content.append({"type": "image"})
            text = strip_placeholder(text)
        content.append({"type": "text", "text": text})
        messages.append({"role": ROLES[turn["from"]], "content": content})
    return messages
