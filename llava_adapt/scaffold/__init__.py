"""`llava-adapt domain new NAME`: scaffold a domain plugin package from `template/`.

In the template, `__NAME__` stands for the domain name, `__PACKAGE__` for the import package
(`llava_adapt_<name>`) and `__DIST__` for the distribution name (`llava-adapt-<name>`). Files ending in `.tmpl`
lose that suffix.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from llava_adapt.domain import NAME_PATTERN
from llava_adapt.errors import InputError


class ScaffoldError(InputError, ValueError):
    """The domain name or the target folder cannot be used."""


def scaffold_domain(name: str, directory: Path) -> Path:
    """Create a plugin package for domain `name` under `directory`.

    Args:
        name (`str`): the domain name, a lower-case identifier.
        directory (`Path`): the folder to create the package folder (`llava-adapt-<name>/`) in.

    Returns:
        The package folder.

    Raises:
        ScaffoldError: a bad name, or the package folder already exists.
    """
    if not NAME_PATTERN.match(name):
        raise ScaffoldError(f"domain name {name!r} must be a lower-case identifier such as 'pathology'")
    package = f"llava_adapt_{name}"
    dist = f"llava-adapt-{name}"
    target = Path(directory) / dist
    if target.exists():
        raise ScaffoldError(f"{target} already exists; choose another --dir or remove it")
    template = importlib.resources.files("llava_adapt.scaffold") / "template"
    _copy(template, target, {"__NAME__": name, "__PACKAGE__": package, "__DIST__": dist})
    return target


def _copy(source, target: Path, names: dict[str, str]) -> None:
    target.mkdir(parents=True)
    for item in source.iterdir():
        if item.name == "__pycache__":
            continue
        out_name = item.name
        for key, value in names.items():
            out_name = out_name.replace(key, value)
        out_name = out_name.removesuffix(".tmpl")
        if item.is_dir():
            _copy(item, target / out_name, names)
        else:
            text = item.read_text(encoding="utf-8")
            for key, value in names.items():
                text = text.replace(key, value)
            (target / out_name).write_text(text, encoding="utf-8")
