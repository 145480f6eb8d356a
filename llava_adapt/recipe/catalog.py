"""The recipes `llava-adapt recipe ls`, `cp` and `run` find by name: the built-in ones and those plugin packages ship.

A plugin package ships recipes through the entry-point group `llava_adapt.recipes`; the value names a folder of
`*.yaml` recipes inside an importable package, as `package:folder` (or `package` for the package's own folder)::

    [project.entry-points."llava_adapt.recipes"]
    pathology = "llava_adapt_pathology:recipes"     # llava_adapt_pathology/recipes/*.yaml

    [tool.setuptools.package-data]
    llava_adapt_pathology = ["prompts/**/*", "recipes/*.yaml"]

A recipe's name is its file stem (`recipes/pathology.yaml` is the recipe `pathology`); the entry point's own name
only labels where the recipes come from. Names are shared with the built-in recipes, which win: a plugin recipe
named like a built-in one is left out of the names (its path still runs it); `recipe ls` warns about it, and so
does every command that resolves that name to the built-in recipe. Two
plugin packages shipping the same name make that name ambiguous: asking for it is an error naming both files.
A folder that cannot be read (the package fails to import, the folder is missing) is reported by `recipe ls` and
does not hide the other recipes.
"""

from __future__ import annotations

import importlib.metadata as importlib_metadata
import importlib.resources
from dataclasses import dataclass, field
from pathlib import Path

RECIPES_GROUP = "llava_adapt.recipes"
BUILTIN = "llava-adapt"  # the provider named for the built-in recipes


@dataclass(frozen=True)
class RecipeFile:
    """One recipe file that can be asked for by name.

    Args:
        name (`str`): the recipe's name (file stem).
        path (`Path`): the YAML file.
        provider (`str`): `"llava-adapt"` for a built-in recipe, else the plugin distribution and version.
    """

    name: str
    path: Path
    provider: str = BUILTIN

    @property
    def builtin(self) -> bool:
        return self.provider == BUILTIN


@dataclass
class RecipeCatalog:
    """The recipes found, by name, and what went wrong while finding them.

    Args:
        recipes (`dict[str, RecipeFile]`): every recipe reachable by name.
        ambiguous (`dict[str, list[RecipeFile]]`): names two or more plugin packages ship (reachable by path only).
        shadowed (`dict[str, list[RecipeFile]]`): plugin recipes named like a built-in one, by name.
        warnings (`list[str]`): one line each: a shadowed plugin recipe, an ambiguous name, an unreadable folder.
    """

    recipes: dict[str, RecipeFile] = field(default_factory=dict)
    ambiguous: dict[str, list[RecipeFile]] = field(default_factory=dict)
    shadowed: dict[str, list[RecipeFile]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _yaml_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix == ".yaml" and p.is_file())


def builtin_recipe_files() -> list[RecipeFile]:
    """The recipes shipped inside llava-adapt (`llava_adapt.recipes`)."""
    folder = Path(str(importlib.resources.files("llava_adapt.recipes")))
    return [RecipeFile(p.stem, p) for p in _yaml_files(folder)]


def _plugin_folder(entry_point: importlib_metadata.EntryPoint) -> Path:
    """The folder an entry point of `llava_adapt.recipes` names (`package:folder`, or `package`).

    Raises:
        Exception: whatever importing the package raises; `NotADirectoryError` when the folder is not there.
    """
    folder = importlib.resources.files(entry_point.module)
    for part in (entry_point.attr or "").split("."):
        folder = folder / part if part else folder
    path = Path(str(folder))
    if not path.is_dir():
        raise NotADirectoryError(f"{path} is not a folder")
    return path


def plugin_recipe_files(group: str = RECIPES_GROUP) -> tuple[list[RecipeFile], list[str]]:
    """The recipes installed plugin packages ship, and a line for each entry point whose folder cannot be read."""
    found: list[RecipeFile] = []
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    for ep in importlib_metadata.entry_points(group=group):
        dist = ep.dist
        provider = f"{dist.metadata['Name']} {dist.version}" if dist is not None else ep.value
        if (ep.value, provider) in seen:  # the same distribution visible twice on sys.path
            continue
        seen.add((ep.value, provider))
        try:
            folder = _plugin_folder(ep)
        except Exception as exc:  # a broken plugin must not hide the other recipes
            problems.append(f"recipes {ep.name!r} ({ep.value}, from {provider}) cannot be read: "
                            f"{type(exc).__name__}: {exc}")  # fmt: skip
            continue
        found += [RecipeFile(p.stem, p, provider) for p in _yaml_files(folder)]
    return found, problems


def recipe_catalog() -> RecipeCatalog:
    """The built-in and plugin recipes by name, with the rules of the module docstring applied."""
    catalog = RecipeCatalog(recipes={r.name: r for r in builtin_recipe_files()})
    plugin_files, catalog.warnings = plugin_recipe_files()
    by_name: dict[str, list[RecipeFile]] = {}
    for recipe in plugin_files:
        by_name.setdefault(recipe.name, []).append(recipe)
    for name, claims in sorted(by_name.items()):
        if name in catalog.recipes:
            catalog.shadowed[name] = claims
            for recipe in claims:
                catalog.warnings.append(
                    f"recipe {name!r} from {recipe.provider} is shadowed by the built-in recipe of that name; "
                    f"run it by its path: {recipe.path}"
                )
        elif len(claims) > 1:
            catalog.ambiguous[name] = claims
            who = "; ".join(f"{r.provider}: {r.path}" for r in claims)
            catalog.warnings.append(f"recipe {name!r} is shipped by more than one package ({who}); run it by its path")
        else:
            catalog.recipes[name] = claims[0]
    return catalog
