"""From a teacher's response (or the offline generator's turns) to validated LLaVA conversation turns.

Every way a response can be unusable has a short, stable reason (the key counted in the manifest) and a detail
(what exactly, written to the rejects file):

`no choices`, `refusal`, `truncated`, `content filter`, `empty response`, `unparseable`, `unexpected role` (a
`System:` / `User:` / ... line among the prompt's own turn markers: the teacher role-played another speaker, whose
text would otherwise end up inside a turn), `too few turns`, `turn too long`, `leak`, `invalid conversation`
(offline generator output that is not alternating human/gpt turns, or has an empty turn).
"""

from __future__ import annotations

import random
import re
from typing import Any

from llava_adapt.data.records import GPT, HUMAN
from llava_adapt.generate.filters import TextFilter
from llava_adapt.openai_client.reply import Rejected, response_text
from llava_adapt.prompt_folder import PromptType

IMAGE_TOKEN = "<image>"
SEPARATOR = re.compile(r"^\s*={3,}\s*$", re.MULTILINE)
# Speaker names a chat transcript uses; at the start of a line, any of them that is not one of the prompt's own two
# markers is a turn by a speaker the conversation cannot have.
ROLE_NAMES = ("System", "User", "Assistant", "Human", "GPT")


Turns = list[dict[str, str]]


def _markers(names: tuple[str, ...]) -> re.Pattern[str]:
    """A turn marker at the start of a line (`Question:`, `**User:**`, `> Answer:`), for any of `names`."""
    alternatives = "|".join(re.escape(name) for name in names)
    return re.compile(rf"^[ \t>#*_]*({alternatives})[*_]*[ \t]*:[*_]*[ \t]*", re.MULTILINE | re.IGNORECASE)


def _foreign_role(found: list[re.Match[str]], own: set[str], text: str) -> Rejected | None:
    """The reject for the first marker in `found` that is not one of the `own` (lower-case) markers, if any."""
    foreign = next((m for m in found if m.group(1).lower() not in own), None)
    if foreign is None:
        return None
    line = text[foreign.start() :].split("\n", 1)[0].strip()[:80]
    return Rejected("unexpected role", f"a {foreign.group(1)!r} line among the turns: {line!r}")


def _split_turns(text: str, prompt: PromptType) -> Turns | Rejected:
    markers = {prompt.human.lower(): HUMAN, prompt.gpt.lower(): GPT}
    others = tuple(name for name in ROLE_NAMES if name.lower() not in markers)
    text = SEPARATOR.sub("", text)
    found = list(_markers((prompt.human, prompt.gpt, *others)).finditer(text))
    foreign = _foreign_role(found, set(markers), text)
    if foreign is not None:
        return foreign
    if not found:
        return Rejected("unparseable", f"no {prompt.human!r}/{prompt.gpt!r} markers")
    if text[: found[0].start()].strip():
        return Rejected("unparseable", "text before the first turn marker")
    turns: Turns = []
    for i, match in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(text)
        value = text[match.end() : end].strip()
        role = markers[match.group(1).lower()]
        expected = HUMAN if i % 2 == 0 else GPT
        if role != expected:
            return Rejected("unparseable", f"turn {i + 1} is a {role} turn, expected {expected}")
        if not value:
            return Rejected("unparseable", f"turn {i + 1} is empty")
        turns.append({"from": role, "value": value})
    if turns[-1]["from"] != GPT:
        return Rejected("unparseable", "the last question has no answer")
    return turns


def parse_response(text: str, prompt: PromptType, rng: random.Random) -> Turns | Rejected:
    """Split a response into turns as the prompt type's format says.

    Args:
        text (`str`): the assistant's text.
        prompt (`PromptType`): its prompt type (`format`, markers, `min_pairs`, `questions`).
        rng (`random.Random`): draws the question of a `"description"` type (seed it per job for stable output).
    """
    if prompt.format == "description":
        foreign = _foreign_role(list(_markers(ROLE_NAMES).finditer(text)), set(), text)
        if foreign is not None:
            return foreign
        return [{"from": HUMAN, "value": rng.choice(prompt.questions)}, {"from": GPT, "value": text.strip()}]
    turns = _split_turns(text, prompt)
    if isinstance(turns, Rejected):
        return turns
    if len(turns) // 2 < prompt.min_pairs:
        return Rejected("too few turns", f"{len(turns) // 2} question/answer pairs, at least {prompt.min_pairs}")
    return turns


def check_turns(turns: Any) -> Turns | Rejected:
    """Check that `turns` is a non-empty list of alternating human/gpt turns with non-empty text.

    Args:
        turns (`Any`): what an offline generator returned (`[{"from": "human" | "gpt", "value": str}, ...]`).
    """
    if not isinstance(turns, list) or not turns or len(turns) % 2:
        return Rejected("invalid conversation", "expected an even, non-empty list of turns")
    checked: Turns = []
    for i, turn in enumerate(turns):
        expected = HUMAN if i % 2 == 0 else GPT
        if not isinstance(turn, dict) or turn.get("from") != expected:
            return Rejected("invalid conversation", f"turn {i + 1} should be from {expected!r}")
        value = turn.get("value")
        if not isinstance(value, str) or not value.replace(IMAGE_TOKEN, "").strip():
            return Rejected("invalid conversation", f"turn {i + 1} is empty")
        checked.append({"from": expected, "value": value})
    return checked


def _snippet(text: str, found: str, width: int = 60) -> str:
    at = text.find(found)
    start = max(0, at - width)
    return ("..." if start else "") + text[start : at + len(found) + width].replace("\n", " ")


def finish_turns(
    turns: Turns, leak: TextFilter, refusal: TextFilter, max_turn_chars: int | None = None
) -> Turns | Rejected:
    """Filter and normalise checked turns: refusals, leaks and overlong turns are rejected; `<image>\\n` starts the
    first turn.

    `<image>` is removed from wherever the text put it and prepended to the first human turn, as LLaVA's
    `preprocess_multimodal` does.

    Args:
        turns (`list[dict[str, str]]`): checked turns (`check_turns` or `parse_response`).
        leak (`TextFilter`): the domain's leak filter, applied to every turn.
        refusal (`TextFilter`): the refusal filter, applied to the assistant turns.
        max_turn_chars (`int`, *optional*): a longer turn is rejected (`"turn too long"`); `None` = no bound.
    """
    for i, turn in enumerate(turns):
        if max_turn_chars is not None and len(turn["value"]) > max_turn_chars:
            return Rejected(
                "turn too long", f"turn {i + 1} has {len(turn['value'])} characters, at most {max_turn_chars}"
            )
    for turn in turns:
        hit = refusal.find(turn["value"]) if turn["from"] == GPT else None
        if hit:
            return Rejected("refusal", f"{hit[0]}: {_snippet(turn['value'], hit[1])}")
    for turn in turns:
        hit = leak.find(turn["value"])
        if hit:
            return Rejected("leak", f"{hit[0]}: {_snippet(turn['value'], hit[1])}")
    out = [{"from": t["from"], "value": t["value"].replace(IMAGE_TOKEN, "").strip()} for t in turns]
    out[0]["value"] = f"{IMAGE_TOKEN}\n{out[0]['value']}"
    return out


def response_turns(
    response: dict[str, Any],
    prompt: PromptType,
    rng: random.Random,
    leak: TextFilter,
    refusal: TextFilter,
    max_turn_chars: int | None = None,
) -> Turns | Rejected:
    """The whole path from a Chat Completions response to final turns (or the reason it is rejected).

    Args:
        response (`dict`): the response body.
        prompt (`PromptType`): the job's prompt type (response format).
        rng (`random.Random`): the job's random generator (description questions).
        leak (`TextFilter`): the domain's leak filter.
        refusal (`TextFilter`): the refusal filter.
        max_turn_chars (`int`, *optional*): a longer turn is rejected (`"turn too long"`); `None` = no bound.
    """
    text = response_text(response)
    if isinstance(text, Rejected):
        return text
    hit = refusal.find(text)
    if hit:
        return Rejected("refusal", f"{hit[0]}: {_snippet(text, hit[1])}")
    turns = parse_response(text, prompt, rng)
    if isinstance(turns, Rejected):
        return turns
    return finish_turns(turns, leak, refusal, max_turn_chars)
