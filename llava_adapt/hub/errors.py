"""The error types of publishing and export: a run that cannot be published (exit code 1), and a request the
command line makes that publishing refuses (exit code 2)."""

from __future__ import annotations

from llava_adapt.errors import InputError, LlavaAdaptError


class PublishError(LlavaAdaptError, RuntimeError):
    """A run directory cannot be published or exported; the message says what to do (run a stage, log in, ...)."""


class PublishInputError(InputError, PublishError):
    """What the command line asks for is refused (a repository id that is not OWNER/NAME, `--include-images` on
    images converted from patient data): exit code 2, as any wrong input."""
