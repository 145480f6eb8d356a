"""Which of a domain's prompt types a recipe generates. The prompt folder itself is `llava_adapt.prompt_folder`."""

from __future__ import annotations

from llava_adapt.domain import Domain
from llava_adapt.prompt_folder import PromptError
from llava_adapt.suggest import did_you_mean


def select_prompt_types(domain: Domain, names: list[str] | None) -> list[str]:
    """The prompt types to generate: `names` checked against the domain's, or all of them when `names` is None.

    Raises:
        PromptError: an unknown name, with a did-you-mean and the list of available types.
    """
    available = domain.prompt_types()
    if not available:
        raise PromptError(f"domain {domain.name!r} has no prompt types in {domain.prompts_dir}")
    if names is None:
        return available
    for name in names:
        if name not in available:
            raise PromptError(
                f"domain {domain.name!r} has no prompt type {name!r}.{did_you_mean(name, available)} "
                f"Available: {', '.join(available)}"
            )
    return list(dict.fromkeys(names))
