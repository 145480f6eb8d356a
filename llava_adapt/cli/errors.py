"""How a command ends on an error: one scrubbed line and the documented exit code, or a traceback for a bug.

Every verb group is a `CommandGroup`, so every command gets the same treatment without catching anything itself:
an error `llava_adapt.errors.user_error` recognises (a `LlavaAdaptError` from the core or a plugin, the file
system's disk-full / read-only / permission errors, a missing file) prints as `error: <message>`, followed by any
notes attached to it, and the command exits with the error's code. `LLAVA_ADAPT_DEBUG=1` shows the traceback instead.
"""

from __future__ import annotations

import os
from typing import Any

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from llava_adapt.errors import EXIT_INTERRUPTED, user_error
from llava_adapt.scrub import scrub

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def print_error(exc: BaseException) -> int | None:
    """Print `exc` as a user-facing error and return its exit code; `None` (nothing printed) when it is a bug or
    `LLAVA_ADAPT_DEBUG` is set, so that the caller re-raises it with its traceback.

    Args:
        exc (`BaseException`): what the command raised.
    """
    error = user_error(exc)
    if error is None or os.environ.get("LLAVA_ADAPT_DEBUG"):
        return None
    err_console.print(Text.assemble(("error:", "red"), " ", scrub(str(error))))
    for note in [*getattr(exc, "__notes__", []), *(getattr(error, "__notes__", []) if error is not exc else [])]:
        err_console.print(Text(scrub(str(note))))
    return error.exit_code


class CommandGroup(TyperGroup):
    """A typer group whose commands end on a user-facing error with one line and its exit code (module docstring)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            err_console.print("interrupted; run the same command again to resume")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:  # typer's own Exit / Abort / usage errors are not user errors: they pass through
            code = print_error(exc)
            if code is None:
                raise
            raise typer.Exit(code) from None
