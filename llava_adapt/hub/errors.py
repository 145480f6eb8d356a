"""The one error type of publishing and export."""

from __future__ import annotations

from llava_adapt.errors import LlavaAdaptError


class PublishError(LlavaAdaptError, RuntimeError):
    """A run directory cannot be published or exported; the message says what to do (run a stage, log in, ...)."""
