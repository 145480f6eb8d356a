"""Keep secrets out of what llava-adapt prints and writes: error messages, logs, manifests, rejects.

A server may repeat the API key it was sent in its error message ("Incorrect API key provided: sk-..."), and an
exception may carry a token in its text. Every message that reaches the console, a log, `manifest.json` or a
rejects file goes through `scrub`, which replaces

- every secret this process was configured with (`register_secret`: the teacher's and the judge's API keys, the
  Hub token), wherever it appears, and
- anything shaped like an OpenAI (`sk-...`) or Hugging Face (`hf_...`) token,

with `[redacted]`.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"
TOKEN_PATTERN = re.compile(r"\b(?:sk-[A-Za-z0-9_\-]{8,}|hf_[A-Za-z0-9]{8,})")
MIN_SECRET_LENGTH = 6  # shorter values ("EMPTY" for a vLLM server without authentication) are not secrets

_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember `value` (an API key, a token) so that `scrub` removes it from every message of this process.

    Args:
        value (`str`, *optional*): the secret; `None`, empty and values shorter than 6 characters are ignored.
    """
    if value and len(value) >= MIN_SECRET_LENGTH:
        _secrets.add(value)


def scrub(text: str) -> str:
    """`text` with every registered secret and every `sk-...` / `hf_...` token replaced by `[redacted]`.

    Args:
        text (`str`): a message about to be printed, logged or written.
    """
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return TOKEN_PATTERN.sub(REDACTED, text)


class ScrubFilter(logging.Filter):
    """A logging filter that scrubs each record's message (install it on a handler)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True
