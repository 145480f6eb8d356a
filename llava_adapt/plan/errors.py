"""The one error a plan raises."""

from __future__ import annotations

from llava_adapt.errors import LlavaAdaptError


class PlanError(LlavaAdaptError, ValueError):
    """The plan cannot be made (a model config that cannot be read, an unknown accelerate config). The message is
    one line that says what is missing and how to provide it."""
