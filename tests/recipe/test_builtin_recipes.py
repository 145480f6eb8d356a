"""The shipped recipes: every recipe and preset validates, and each file documents itself."""

from __future__ import annotations

import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from llava_adapt.recipe.loader import builtin_recipes, load_recipe, overlay, read_presets

RECIPES = sorted(builtin_recipes())


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_and_its_presets_validate(name: str):
    path = builtin_recipes()[name]
    text = path.read_text()
    assert text.startswith("#") and f"llava-adapt recipe run {name}" in text, "header must give the run command"
    assert "tiny" in read_presets(path)
    load_recipe(name)
    for preset in read_presets(path):
        load_recipe(name, preset=preset)


def test_switching_the_source_replaces_its_arguments():
    base = OmegaConf.create(
        {
            "data": {"source": "figures", "args": {"path": "x.json"}},
            "evaluate": {"benchmarks": ["a", "b"], "args": {"a": {"k": 1}, "b": {"k": 2}}},
        }
    )
    merged = overlay(base, OmegaConf.create({"data": {"source": "synthetic", "args": {"n": 3}}}))
    assert OmegaConf.to_container(merged.data) == {"source": "synthetic", "args": {"n": 3}}
    same = overlay(base, OmegaConf.create({"data": {"args": {"limit": 3}}}))
    assert OmegaConf.to_container(same.data.args) == {"path": "x.json", "limit": 3}
    fewer = overlay(base, OmegaConf.from_dotlist(["evaluate.benchmarks=[b]"]))
    assert OmegaConf.to_container(fewer.evaluate) == {"benchmarks": ["b"], "args": {"b": {"k": 2}}}


@pytest.mark.slow
def test_validating_a_recipe_does_not_import_torch():
    code = (
        "import sys; from llava_adapt.recipe.loader import load_recipe; "
        "[load_recipe(n, preset='tiny') for n in ('general', 'biomed', 'scienceqa')]; "
        "assert 'torch' not in sys.modules, 'recipe validation imported torch'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
