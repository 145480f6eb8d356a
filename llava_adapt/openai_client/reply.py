"""The text of a Chat Completions reply, or why there is none worth using."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rejected:
    """Why a response or conversation is unusable.

    Args:
        reason (`str`): short and stable (a manifest key), e.g. `"leak"`.
        detail (`str`, defaults to `""`): the specifics, for the rejects file.
    """

    reason: str
    detail: str = ""


def response_text(response: dict[str, Any], section: str = "generate") -> str | Rejected:
    """The assistant's text in a Chat Completions response, or why there is none worth parsing.

    Args:
        response (`dict`): the response body (`choices[0].message`, `finish_reason`).
        section (`str`, defaults to `"generate"`): the recipe section of the client, named in the `truncated`
            detail (whose `max_tokens` to raise).
    """
    choices = response.get("choices")
    if not isinstance(choices, list) or not choices:
        return Rejected("no choices", "the response has no choices")
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    if message.get("refusal"):
        return Rejected("refusal", str(message["refusal"])[:300])
    finish = choice.get("finish_reason")
    if finish == "length":
        return Rejected("truncated", f"finish_reason=length: raise {section}.max_tokens")
    if finish == "content_filter":
        return Rejected("content filter", "finish_reason=content_filter")
    content = message.get("content")
    if not isinstance(content, str) or not content.strip():
        return Rejected("empty response", "the message content is empty")
    return content
