"""Recipes shipped by plugin packages (entry-point group `llava_adapt.recipes`): `recipe ls`, `cp`, `validate` and
`run` find them by name; built-in names win with a warning; a name two packages ship is refused; a folder that
cannot be read is a warning that hides nothing else."""

from __future__ import annotations

import importlib
import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llava_adapt.cli import app
from llava_adapt.recipe.catalog import recipe_catalog
from llava_adapt.recipe.loader import builtin_recipes, find_recipe, load_recipe
from tests.plugins import TOY_RECIPE

runner = CliRunner()


def ship(site: Path, dist: str, target: str, files: dict[str, str]) -> Path:
    """Install distribution `dist` into `site`: an entry point `target` in `llava_adapt.recipes`, and `files` (recipe
    name -> YAML) in the folder `target` names (`package:folder`). Returns that folder."""
    package, _, folder = target.partition(":")
    recipes = site / package / folder
    recipes.mkdir(parents=True)
    (site / package / "__init__.py").write_text("")
    for name, text in files.items():
        (recipes / f"{name}.yaml").write_text(text)
    info = site / f"{dist.replace('-', '_')}-2.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 2.0\n")
    (info / "entry_points.txt").write_text(f"[llava_adapt.recipes]\n{package} = {target}\n")
    importlib.invalidate_caches()
    return recipes


@pytest.fixture
def site(tmp_path: Path, plugin_site) -> Path:
    """A site folder on sys.path with the toy domain installed (the recipes below use it)."""
    plugin_site("toy-plugin", {"toy": "toy_plugin:domain"}, {"toy_plugin": "TOY:toy"})
    return tmp_path / "site"


def test_a_shipped_recipe_is_listed_copied_validated_by_name(site: Path, tmp_path: Path):
    folder = ship(site, "toy-recipes", "toy_recipes:recipes", {"toy_offline": TOY_RECIPE})
    listing = runner.invoke(app, ["recipe", "ls", "--json"])
    assert listing.exit_code == 0, listing.output
    rows = {row["name"]: row for row in json.loads(listing.stdout)}
    assert rows["toy_offline"] == {
        "name": "toy_offline",
        "domain": "toy",
        "description": "A toy recipe for tests.",
        "presets": ["tiny"],
        "path": str(folder / "toy_offline.yaml"),
        "provider": "toy-recipes 2.0",
    }
    assert rows["general"]["provider"] == "llava-adapt"

    copied = runner.invoke(app, ["recipe", "cp", "toy_offline", str(tmp_path)])
    assert copied.exit_code == 0, copied.output
    assert (tmp_path / "toy_offline.yaml").read_text() == TOY_RECIPE
    validated = runner.invoke(app, ["recipe", "validate", "toy_offline", "--preset", "tiny"])
    assert validated.exit_code == 0, validated.output
    assert load_recipe("toy_offline", preset="tiny").recipe.instruct.max_steps == 7


def test_a_plugin_recipe_named_like_a_built_in_one_is_shadowed_with_a_warning(site: Path, caplog):
    folder = ship(site, "toy-recipes", "toy_recipes:recipes", {"general": TOY_RECIPE, "toy_offline": TOY_RECIPE})
    with caplog.at_level(logging.WARNING, logger="llava_adapt.recipe.loader"):
        assert find_recipe("general") == builtin_recipes()["general"]
    assert caplog.messages == [f"using the built-in recipe 'general'; the one toy-recipes 2.0 ships runs by its "
                               f"path: {folder / 'general.yaml'}"]  # fmt: skip
    listing = runner.invoke(app, ["recipe", "ls", "--json"])
    rows = {row["name"]: row for row in json.loads(listing.stdout)}
    assert rows["general"]["provider"] == "llava-adapt" and rows["toy_offline"]["provider"] == "toy-recipes 2.0"
    assert (f"warning: recipe 'general' from toy-recipes 2.0 is shadowed by the built-in recipe of that name; run it "
            f"by its path: {folder / 'general.yaml'}") in listing.stderr  # fmt: skip
    assert load_recipe(str(folder / "general.yaml")).recipe.domain == "toy"  # still runs by its path


def test_a_name_two_packages_ship_is_refused_naming_both(site: Path):
    one = ship(site, "one-recipes", "one_recipes:recipes", {"toy_offline": TOY_RECIPE})
    two = ship(site, "two-recipes", "two_recipes:recipes", {"toy_offline": TOY_RECIPE})
    result = runner.invoke(app, ["recipe", "validate", "toy_offline"])
    assert result.exit_code == 2
    assert "more than one plugin package ships a recipe of that name" in result.output
    assert str(one / "toy_offline.yaml") in result.output and str(two / "toy_offline.yaml") in result.output
    assert "toy_offline" not in recipe_catalog().recipes


def test_an_unreadable_recipe_folder_is_a_warning_and_hides_nothing_else(site: Path):
    ship(site, "toy-recipes", "toy_recipes:recipes", {"toy_offline": TOY_RECIPE})
    info = site / "broken_recipes-2.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-recipes\nVersion: 2.0\n")
    (info / "entry_points.txt").write_text("[llava_adapt.recipes]\nbroken = no_such_package:recipes\n")
    importlib.invalidate_caches()
    listing = runner.invoke(app, ["recipe", "ls", "--json"])
    assert listing.exit_code == 0
    assert {"toy_offline", "general"} <= {row["name"] for row in json.loads(listing.stdout)}
    assert ("warning: recipes 'broken' (no_such_package:recipes, from broken-recipes 2.0) cannot be read: "
            "ModuleNotFoundError") in listing.stderr  # fmt: skip
