"""What the model card makes of each built-in domain's real `metrics.json`: `model-index` holds scores only,
baselines stand next to the score they belong to, counts print as integers; a plugin that declares nothing publishes
no score."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from huggingface_hub import ModelCard

from llava_adapt.hub.card import build_model_card
from llava_adapt.hub.run_info import load_run
from tests.hub.conftest import write_recipe
from tests.worked_metrics import worked_metrics_json

REPO = "someone/llava-adapted"


def _card(run_dir: Path, domain: str, benchmarks: dict[str, dict]) -> ModelCard:
    """The card of the run with `benchmarks` (name -> metrics.json) as its only evaluation results."""
    write_recipe(run_dir, domain=domain, evaluate={"benchmarks": list(benchmarks)})
    shutil.rmtree(run_dir / "eval")
    for name, data in benchmarks.items():
        (run_dir / "eval" / name).mkdir(parents=True)
        (run_dir / "eval" / name / "metrics.json").write_text(json.dumps(data), encoding="utf-8")
    return ModelCard(str(build_model_card(load_run(run_dir), REPO, "adapter")))


def _published(card: ModelCard) -> dict[tuple[str, str], float]:
    return {(r.dataset_name, r.metric_type): r.metric_value for r in card.data.eval_results or []}


def test_chance_is_a_reference_level_not_a_result(run_dir: Path) -> None:
    data = worked_metrics_json("general", "shapes_color")
    card = _card(run_dir, "general", {"shapes_color": data})
    assert _published(card) == {("shapes_color", "accuracy"): data["metrics"]["accuracy"]}
    assert "| benchmark | metric | kind | this model | before training | reference level |" in card.text
    assert "| shapes_color | accuracy | primary score | 0.6667 | 0.0000 | 0.2500 (chance) |" in card.text
    assert "| shapes_color | num_closed | count | 3 | 3 |  |" in card.text
    assert "| shapes_color | chance |" not in card.text  # shown only as accuracy's reference level
    assert "accuracy of guessing" in card.text


def test_scienceqa_percentages_counts_and_ensemble(run_dir: Path) -> None:
    data = worked_metrics_json("scienceqa", "scienceqa")
    card = _card(run_dir, "scienceqa", {"scienceqa": data})
    published = _published(card)
    assert {m for _, m in published} == {"accuracy", "NAT", "SOC", "LAN", "TXT", "IMG", "NO", "G1-6", "G7-12"}
    assert published["scienceqa", "accuracy"] == 50.0  # "A" and "C. z" are right; "The answer is A." is wrong
    text = card.text
    assert "| scienceqa | accuracy | primary score (%) | 50.00 | 0.00 | 25.00 |" in text  # before, ensemble
    assert "| scienceqa | parse_failed | count | 1 | 4 | 0 |" in text
    assert "| scienceqa | n_requeried | count | – | – | 4 |" in text  # the ensemble's own count
    assert "| scienceqa | count | count | 4 | 4 | 4 |" in text


def test_judged_chat_scores_and_the_reference_answers_level(run_dir: Path) -> None:
    data = worked_metrics_json("biomed", "llava_med_chat")
    card = _card(run_dir, "biomed", {"llava_med_chat": data})
    published = {m for _, m in _published(card)}
    assert {"relative_score", "relative_score_ratio_of_means", "open_recall"} <= published
    assert not published & {"reference_score", "model_score", "judge_failures", "zero_reference", "n_scored"}
    rows = [line for line in card.text.splitlines() if line.startswith("| llava_med_chat |")]
    assert rows[0].startswith("| llava_med_chat | relative_score | primary score (%) |")
    model_row = next(r for r in rows if "| model_score |" in r)
    reference = data["metrics"]["reference_score"]
    assert model_row.endswith(f"| {reference:.4f} (reference_score) |")
    assert "| llava_med_chat | judge_failures | count | 2 |" in card.text


def test_a_plugin_that_declares_nothing_publishes_no_score(run_dir: Path) -> None:
    data = worked_metrics_json("general", "shapes_color")
    del data["metric_specs"], data["primary_metric"]  # what a benchmark without metric_specs writes
    card = _card(run_dir, "general", {"shapes_color": data})
    assert card.data.eval_results is None
    assert "| shapes_color | accuracy | diagnostic (undeclared) | 0.6667 | 0.0000 |" in card.text
    assert "| shapes_color | num_closed | count (undeclared) | 3 | 3 |" in card.text
