"""The errors a user can act on, and the exit code each ends the command with.

Every error llava-adapt raises for a reason its message explains (a bad recipe, a malformed data file, a stage that
cannot go on, a server that refuses the key) derives from `LlavaAdaptError`; the command line prints such an error as
one line (`error: ...`) and exits with its `exit_code`, never with a traceback. A domain plugin, built in or
third-party, signals bad input with `DataError` (`llava_adapt.plugin.DataError`) and is treated the same way: what
counts is the exception's class, never the module that raised it. Anything else that escapes is a bug and keeps its
traceback.

Exit codes (README, "When something goes wrong"):

| code | meaning |
|---|---|
| 0 | done |
| 1 | the command failed for a reason its message explains (`LlavaAdaptError`) |
| 2 | the input is wrong: command line, recipe, a data or prompt file, a missing key (`InputError`, `DataError`) |
| 3 | the file system refused: disk full, file too large, read-only or not permitted (`FileSystemError`) |
| 130 | interrupted (Ctrl-C); run the same command again to resume |

The file system's own `OSError`s (`ENOSPC`, `EROFS`, `EACCES`, ...) are turned into a `FileSystemError` by
`user_error`, which names the file and what to do, so a full disk is one line wherever it happens.
"""

from __future__ import annotations

import errno
import os

EXIT_FAILED, EXIT_INPUT, EXIT_FILE_SYSTEM, EXIT_INTERRUPTED = 1, 2, 3, 130


class LlavaAdaptError(Exception):
    """An error whose message says what went wrong and what to do; printed as one line, exit code `exit_code`.

    Subclass it (or `InputError`) for every error a user can act on; a plugin may raise it directly.
    """

    exit_code: int = EXIT_FAILED


class InputError(LlavaAdaptError):
    """The input is wrong (a command-line value, a recipe, a data, prompt or configuration file): exit code 2."""

    exit_code = EXIT_INPUT


class DataError(InputError, ValueError):
    """A plugin's input data is unusable as a whole (a malformed file, a wrong layout, records a step cannot use):
    exit code 2, printed as one line whichever plugin raised it.

    A domain plugin raises it (`llava_adapt.plugin.DataError`) with a message that names the file or record and
    says what to fix; one bad record among good ones is a `Skip` with a reason instead. It is also a `ValueError`,
    so code that caught the `ValueError` a plugin raised before still catches it, and a pydantic validator that
    raises it reports a validation error.
    """


class FileSystemError(LlavaAdaptError):
    """The file system refused a read or write (disk full, file too large, read-only, not permitted): exit code 3.

    Args:
        message (`str`): the whole message (the file, what happened, what to do).
        cause (`OSError`, *optional*): the error it stands for.
    """

    exit_code = EXIT_FILE_SYSTEM

    def __init__(self, message: str, cause: OSError | None = None) -> None:
        super().__init__(message)
        self.errno = cause.errno if cause is not None else None


# errno -> what to do about it. `ENOENT` is missing input rather than the file system refusing: see `user_error`.
_ADVICE = {
    errno.ENOSPC: "free some space, or use a run directory on another disk",
    errno.EDQUOT: "the disk quota is used up: free some space, or use a run directory on another disk",
    errno.EFBIG: "the file grew past what the file system or the process's limit (`ulimit -f`) allows",
    errno.EROFS: "use a writable run directory or output path",
    errno.EACCES: "give yourself access to it, or choose another path",
    errno.EPERM: "give yourself access to it, or choose another path",
    errno.EISDIR: "move the folder aside, or choose another path",
    errno.ENOTDIR: "a file is where a folder is expected: move it aside, or choose another path",
    errno.EEXIST: "move it aside, or choose another path",
    errno.ENAMETOOLONG: "choose a shorter path",
    errno.EMFILE: "raise the limit (`ulimit -n`)",
}


def user_error(exc: BaseException) -> LlavaAdaptError | None:
    """The user-facing error `exc` stands for, or `None` when it is a bug (which keeps its traceback).

    Args:
        exc (`BaseException`): what a command raised.

    Returns:
        `exc` itself when it is a `LlavaAdaptError`; a `FileSystemError` naming the file and what to do for an
        `OSError` from the file system (the errors in the table above); an `InputError` for a missing file
        (`FileNotFoundError`, whose message names it); `None` otherwise.
    """
    if isinstance(exc, LlavaAdaptError):
        return exc
    if isinstance(exc, FileNotFoundError):
        where = f"{exc.filename}: " if exc.filename and str(exc.filename) not in str(exc.strerror or "") else ""
        message = f"{where}{exc.strerror}" if exc.strerror else str(exc)
        return InputError(message)
    if isinstance(exc, OSError) and exc.errno in _ADVICE:
        where = f"{exc.filename}: " if exc.filename else ""
        return FileSystemError(f"{where}{exc.strerror or exc} ({_ADVICE[exc.errno]})", exc)
    return None


def add_note(exc: BaseException, note: str) -> None:
    """Attach one more line to `exc` (`BaseException.add_note` on Python 3.11+, the same attribute before it); the
    command line prints notes under the error.

    Args:
        exc (`BaseException`): the error.
        note (`str`): the line to add.
    """
    notes = getattr(exc, "__notes__", None)
    if notes is None:
        notes = []
        exc.__notes__ = notes  # type: ignore[attr-defined]
    notes.append(note)


def naming(exc: OSError, path: str | os.PathLike[str]) -> OSError:
    """`exc` as the same kind of `OSError` naming `path`: a failed `write` or `flush` does not say which file it was
    writing, and "File too large" alone does not tell the user which file to make room for.

    Args:
        exc (`OSError`): the error (its errno and text are kept).
        path (`str | os.PathLike`): the file the caller was writing.
    """
    if exc.errno is None:
        return exc
    return type(exc)(exc.errno, exc.strerror, os.fspath(path))
