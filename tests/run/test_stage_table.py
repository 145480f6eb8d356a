"""The stage table is the one list of stages: everything it names exists, and the lists derived from it agree."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from llava_adapt.recipe.schema import Recipe
from llava_adapt.run.layout import RunLayout
from llava_adapt.run.stage_table import STAGE_ORDER, STAGE_TABLE, TRAINING_STAGES, final_model_stage

DOMAIN_SECTIONS = {"domain.source", "domain.prompts", "domain.finetune", "domain.benchmarks"}


def test_every_stage_names_a_module_recipe_sections_and_layout_paths_that_exist(tmp_path: Path):
    layout = RunLayout(tmp_path)
    for spec in STAGE_TABLE:
        assert importlib.util.find_spec(spec.module) is not None, spec.name
        assert set(spec.sections) <= set(Recipe.model_fields) | DOMAIN_SECTIONS, spec.name
        assert all(isinstance(getattr(layout, name), Path) for name in spec.owns), spec.name
        if spec.trains:
            assert layout.stage_dir(spec.name) in layout.owned_by(spec.name)


def test_a_recipe_lists_only_stages_of_the_table_and_the_final_model_is_the_last_trained():
    assert Recipe.model_fields["stages"].annotation.__args__[0].__args__ == STAGE_ORDER
    assert TRAINING_STAGES == ("align", "instruct", "finetune")
    assert final_model_stage(["prepare", "align", "instruct", "evaluate"]) == "instruct"
    assert final_model_stage(list(STAGE_ORDER)) == "finetune"
    assert final_model_stage(["prepare", "evaluate"]) is None
