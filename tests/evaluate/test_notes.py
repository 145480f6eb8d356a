"""A benchmark's caveats about its question set (`Benchmark.notes`): VQA-RAD from the Hub Parquet copy, whose answer
types the yes/no rule has to guess, says so in `metrics.json`, the report and the model card."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from huggingface_hub import ModelCard
from PIL import Image
from typer.testing import CliRunner

from llava_adapt.cli.errors import CommandGroup
from llava_adapt.cli.eval import register
from llava_adapt.domains.biomed import domain
from llava_adapt.evaluate.report import write_report
from llava_adapt.hub.card import build_model_card
from llava_adapt.hub.run_info import load_run
from llava_adapt.recipe.schema import Recipe
from llava_adapt.run.layout import RunLayout
from llava_adapt.stages import evaluate as evaluate_stage
from llava_adapt.stages.context import StageContext
from tests.hub.conftest import run_dir, run_template  # noqa: F401  (fixtures)


def _hub_copy(root: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buffer, format="PNG")
    image = {"bytes": buffer.getvalue(), "path": "a.jpg"}
    rows = [{"image": image, "question": "Is this an MRI or a CT scan?", "answer": "MRI"},
            {"image": image, "question": "Is there a fracture?", "answer": "no"}]  # fmt: skip
    (root / "vqa_rad/data").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), root / "vqa_rad/data/test-00000-of-00001.parquet")


@pytest.mark.slow
def test_guessed_answer_types_are_stated_in_metrics_json(tmp_path: Path) -> None:
    _hub_copy(tmp_path)
    recipe = Recipe.model_validate(
        {"domain": "biomed", "stages": ["evaluate"], "model": {"source": "tiny"},
         "data": {"source": "synthetic", "root": str(tmp_path)},
         "evaluate": {"benchmarks": ["vqa_rad"], "args": {"vqa_rad": {"path": "vqa_rad"}}, "max_new_tokens": 2}}
    )  # fmt: skip
    layout = RunLayout(tmp_path / "run")
    evaluate_stage.run(StageContext(name="evaluate", recipe=recipe, domain=domain, layout=layout))
    metrics = json.loads((layout.benchmark_dir("vqa_rad") / "metrics.json").read_text())
    assert metrics["notes"] == [
        "No official answer type for 2 of 2 questions: the yes/no rule typed them (1 closed, 1 open), so closed "
        "accuracy may be computed on another question set than the official one. Name the OSF JSON or LLaVA-Med's "
        "converted test file in the benchmark's answer_type_file argument to use the official types."
    ]
    scores = metrics["metrics"]
    assert (scores["n_closed"], scores["n_open"], scores["n_closed_by_rule"], scores["n_open_by_rule"]) == (1, 1, 1, 1)
    assert metrics["primary_metric"] == "closed_accuracy"  # the declarations travel with the numbers
    assert metrics["metric_specs"]["n_closed_by_rule"]["kind"] == "count"
    assert set(metrics["metric_specs"]) == {*scores, "num_items"}  # every metric vqa_rad reports is declared


@pytest.mark.slow
def test_llava_adapt_eval_states_them_too(run_template: Path, tmp_path: Path) -> None:  # noqa: F811
    _hub_copy(tmp_path)
    app = typer.Typer(cls=CommandGroup)  # the root app's error handling
    register(app)
    args = ["eval", str(run_template), "--benchmark", "vqa_rad", "--data-root", str(tmp_path), "--arg", "path=vqa_rad",
            "--max-new-tokens", "2", "--out", str(tmp_path / "out")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (note,) = json.loads((tmp_path / "out" / "vqa_rad" / "metrics.json").read_text())["notes"]
    assert note.startswith("No official answer type for 2 of 2 questions")


@pytest.mark.slow
def test_report_and_card_show_the_notes(run_dir: Path) -> None:  # noqa: F811
    path = run_dir / "eval" / "vqa_rad" / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics["notes"] = ["No official answer type for 5 of 40 questions: the yes/no rule typed them."]
    path.write_text(json.dumps(metrics))
    page = write_report(run_dir).read_text()
    assert '<p class="note">No official answer type for 5 of 40 questions: the yes/no rule typed them.</p>' in page
    card = ModelCard(str(build_model_card(load_run(run_dir), "someone/med", "adapter")))
    assert "> vqa_rad: No official answer type for 5 of 40 questions" in card.text
