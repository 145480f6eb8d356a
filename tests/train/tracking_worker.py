"""A tiny tracked run (prepare, align, instruct, evaluate on the tiny model), importable, and as a script that runs
it reporting to trackio and prints what trackio stored. A separate process, because trackio reads `TRACKIO_DIR` (its
local store) when it is imported.

Usage: TRACKIO_DIR=STORE python tests/train/tracking_worker.py RUN_DIR PROJECT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from llava_adapt.recipe.schema import Recipe
from llava_adapt.stages import align, evaluate, instruct
from tests.train.stage_helpers import context, make_recipe, prepare_data


def tracked_run(run_dir: Path, tracking: dict) -> Recipe:
    """Run prepare, align, instruct (4 steps each, a loss logged every step) and evaluate (`shapes_color`, 8
    images, trained model only) over `run_dir` with the `tracking` section given; return the recipe."""
    run_dir.mkdir(parents=True, exist_ok=True)
    evaluate_section = {"benchmarks": ["shapes_color"], "args": {"shapes_color": {"num_images": 8}},
                        "baseline": False, "max_new_tokens": 3}  # fmt: skip
    base = make_recipe(run_dir).model_dump()
    recipe = Recipe.model_validate({**base, "stages": [*base["stages"], "evaluate"], "evaluate": evaluate_section,
                                    "tracking": tracking})  # fmt: skip
    prepare_data(recipe)
    for stage in (align, instruct, evaluate):
        stage.run(context(recipe, stage.__name__.rsplit(".", 1)[-1]))
    return recipe


def main() -> None:
    from trackio.sqlite_storage import SQLiteStorage

    run_dir, project = Path(sys.argv[1]), sys.argv[2]
    tracked_run(run_dir, {"report_to": ["trackio"], "project": project})
    runs = SQLiteStorage.get_runs(project)
    logs = {run: SQLiteStorage.get_logs(project, run) for run in runs}
    (run_dir / "trackio.json").write_text(json.dumps({"runs": runs, "logs": logs}, default=str))


if __name__ == "__main__":
    main()
