"""A domain's instruction-generation prompt folder (part of the plugin contract), loaded into `PromptType`s.

The generator (`llava_adapt.generate`) reads prompts through this module; the domain contract checks them with it
when a plugin is registered, so a malformed file fails there and not in the middle of a paid run.

One folder per prompt type, in the shape LLaVA used (`llava_adapt.domain` names the folder: `Domain.prompts_dir`)::

    prompts/
      leak_patterns.txt          optional: one regular expression per line (`#` comments), for every type
      conversation/
        system_message.txt
        000_context.txt          few-shot user message, written the way the domain's `build_context` writes it
        000_response.txt         few-shot reference answer, in the type's response format
        format.json              optional: how responses are parsed (defaults below)
        questions.txt            for `"format": "description"`: the instructions the human turn is drawn from

`format.json` keys: `format` (`"turns"`, the default: alternating question/answer blocks; or `"description"`:
the whole response is one answer to a question drawn from `questions.txt`), `human` and `gpt` (the turn markers
of `"turns"`, defaults `"Question"` and `"Answer"`), `min_pairs` (fewer question/answer pairs is a reject,
default 1).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from llava_adapt.errors import InputError

FORMAT_FILE = "format.json"
LEAK_FILE = "leak_patterns.txt"
FORMAT_KEYS = {"format", "human", "gpt", "min_pairs", "questions_file"}


class PromptError(InputError, ValueError):
    """A prompt folder is missing or malformed, or a prompt type does not exist. The message says which."""


@dataclass(frozen=True)
class FewShot:
    """One few-shot example: what the teacher is shown, and the answer it should imitate."""

    context: str
    response: str


@dataclass(frozen=True)
class PromptType:
    """One instruction type of a domain, loaded from its folder.

    Args:
        name (`str`): the folder name, e.g. `"conversation"`.
        system_message (`str`): the system message.
        examples (`tuple[FewShot, ...]`): few-shot pairs, in file-name order.
        format (`"turns" | "description"`, defaults to `"turns"`): how a response becomes turns.
        human (`str`, defaults to `"Question"`): the marker of a human turn in a `"turns"` response.
        gpt (`str`, defaults to `"Answer"`): the marker of an assistant turn in a `"turns"` response.
        min_pairs (`int`, defaults to `1`): fewer question/answer pairs make the response a reject.
        questions (`tuple[str, ...]`, defaults to `()`): the instructions of a `"description"` type.
    """

    name: str
    system_message: str
    examples: tuple[FewShot, ...]
    format: Literal["turns", "description"] = "turns"
    human: str = "Question"
    gpt: str = "Answer"
    min_pairs: int = 1
    questions: tuple[str, ...] = ()

    def messages(self, user_message: str) -> list[dict[str, str]]:
        """The chat messages for one record: system, the few-shot pairs as user/assistant turns, then the record."""
        messages = [{"role": "system", "content": self.system_message}]
        for shot in self.examples:
            messages.append({"role": "user", "content": shot.context})
            messages.append({"role": "assistant", "content": shot.response})
        messages.append({"role": "user", "content": user_message})
        return messages


def _read(path: Path) -> str:
    text = path.read_text(encoding="utf-8").strip()
    if not text:
        raise PromptError(f"{path} is empty")
    return text


def _format_settings(folder: Path) -> dict[str, Any]:
    path = folder / FORMAT_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise PromptError(f"{path}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise PromptError(f"{path}: expected a JSON object")
    unknown = sorted(set(data) - FORMAT_KEYS)
    if unknown:
        raise PromptError(f"{path}: unknown keys {unknown}; known keys are {sorted(FORMAT_KEYS)}")
    if data.get("format", "turns") not in ("turns", "description"):
        raise PromptError(f"{path}: format must be 'turns' or 'description', got {data['format']!r}")
    return data


def load_prompt_type(prompts_dir: str | Path, name: str) -> PromptType:
    """Load one prompt type from `prompts_dir/name/`.

    Args:
        prompts_dir (`str | Path`): a domain's prompts folder.
        name (`str`): the prompt type (a sub-folder).

    Raises:
        PromptError: the folder or a file is missing, empty or malformed (the message names the file).
    """
    folder = Path(prompts_dir) / name
    if not (folder / "system_message.txt").is_file():
        raise PromptError(f"prompt type {name!r}: {folder / 'system_message.txt'} does not exist")
    examples = []
    for context in sorted(folder.glob("*_context.txt")):
        response = context.with_name(context.name.replace("_context.txt", "_response.txt"))
        if not response.is_file():
            raise PromptError(f"prompt type {name!r}: {context.name} has no matching {response.name}")
        examples.append(FewShot(context=_read(context), response=_read(response)))
    settings = _format_settings(folder)
    questions: tuple[str, ...] = ()
    if settings.get("format") == "description":
        questions_path = folder / settings.get("questions_file", "questions.txt")
        if not questions_path.is_file():
            raise PromptError(f"prompt type {name!r} has format 'description' but no {questions_path.name}")
        lines = questions_path.read_text(encoding="utf-8").splitlines()
        questions = tuple(q.strip() for q in lines if q.strip() and not q.lstrip().startswith("#"))
        if not questions:
            raise PromptError(f"{questions_path} lists no questions")
    min_pairs = settings.get("min_pairs", 1)
    if not isinstance(min_pairs, int) or min_pairs < 1:
        raise PromptError(f"{folder / FORMAT_FILE}: min_pairs must be a positive integer, got {min_pairs!r}")
    return PromptType(
        name=name,
        system_message=_read(folder / "system_message.txt"),
        examples=tuple(examples),
        format=settings.get("format", "turns"),
        human=str(settings.get("human", "Question")),
        gpt=str(settings.get("gpt", "Answer")),
        min_pairs=min_pairs,
        questions=questions,
    )


def load_leak_file(prompts_dir: str | Path) -> tuple[str, ...]:
    """The regular expressions in `prompts_dir/leak_patterns.txt` (none when the file does not exist)."""
    path = Path(prompts_dir) / LEAK_FILE
    if not path.is_file():
        return ()
    lines = path.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))


def prompt_folder_problems(prompts_dir: str | Path, types: list[str]) -> list[str]:
    """Load each prompt type and the leak file the way the generator will, and list what is wrong with them.

    Args:
        prompts_dir (`str | Path`): a domain's prompts folder.
        types (`list[str]`): the prompt types (sub-folders) to load.

    Returns:
        One line per problem (a malformed file, an invalid leak pattern); empty when the folder is usable.
    """
    problems = []
    for name in types:
        try:
            load_prompt_type(prompts_dir, name)
        except PromptError as exc:
            problems.append(str(exc))
    try:
        patterns = load_leak_file(prompts_dir)
    except PromptError as exc:
        return [*problems, str(exc)]
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            problems.append(f"{LEAK_FILE}: {pattern!r} is not a valid regular expression ({exc})")
    return problems


def prompt_type_hash(prompts_dir: str | Path, name: str) -> str | None:
    """A SHA-256 hex digest over a prompt type's files (names and contents), or `None` when there is no such
    prompt type. It changes when any file of the type is edited, added or removed.

    Args:
        prompts_dir (`str | Path`): a domain's prompts folder.
        name (`str`): the prompt type (a sub-folder).
    """
    folder = Path(prompts_dir) / name
    if not folder.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def prompt_folder_hash(prompts_dir: str | Path, types: list[str]) -> str:
    """A content hash of the prompt types `types` (`prompt_type_hash`) and the leak file: it changes when any of
    them is edited, added or removed, so the prompts need no version of their own.

    Args:
        prompts_dir (`str | Path`): a domain's prompts folder.
        types (`list[str]`): the prompt types (sub-folders) to cover.

    Returns:
        A SHA-256 hex digest.
    """
    leak = Path(prompts_dir) / LEAK_FILE
    parts = {name: prompt_type_hash(prompts_dir, name) for name in sorted(set(types))}
    parts[LEAK_FILE] = hashlib.sha256(leak.read_bytes()).hexdigest() if leak.is_file() else None
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
