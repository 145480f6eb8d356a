"""The model card: Hub metadata parsed back with `huggingface_hub.ModelCard`, and what the body must state."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from llava_adapt.hub.bundle import domain_notices
from llava_adapt.hub.card import build_model_card
from llava_adapt.hub.errors import PublishError
from llava_adapt.hub.run_info import hub_id, load_run, read_metrics
from tests.hub.conftest import METRICS, write_manifest, write_recipe

REPO = "someone/llava-med-tiny"


def card_of(run_dir: Path, artefact: str = "adapter", **kwargs) -> ModelCard:
    """Render the card and parse it back from its text, as the Hub would."""
    return ModelCard(str(build_model_card(load_run(run_dir), REPO, artefact, **kwargs)))


def test_adapter_card_metadata(run_dir: Path) -> None:
    card = card_of(run_dir, datasets=["someone/pmc-captions"])
    data = card.data.to_dict()
    assert data["base_model"] == "llava-hf/llava-1.5-7b-hf"
    assert data["base_model_relation"] == "adapter"
    assert data["library_name"] == "peft"
    assert data["pipeline_tag"] == "image-text-to-text"
    assert data["license"] == "apache-2.0"
    assert data["datasets"] == ["someone/pmc-captions"]
    assert {"biomed", "llava-adapt", "lora"} <= set(data["tags"])
    results = {(r.dataset_name, r.metric_type): r.metric_value for r in card.data.eval_results}
    scores = ("closed_accuracy", "open_recall", "open_token_f1", "exact_match", "token_f1")
    assert results == {(b, m): METRICS[b]["metrics"][m] for b in ("vqa_rad", "slake") for m in scores}
    # not scores: closed_no_answer (a diagnostic), n_closed, n_open, n_*_by_rule, num_items (counts)
    assert card.data.model_name == "llava-med-tiny"
    assert all(r.task_type == "visual-question-answering" for r in card.data.eval_results)


def test_adapter_card_body(run_dir: Path) -> None:
    text = card_of(run_dir, notices=domain_notices("biomed")).text
    assert "> **Not a medical device. Not for clinical use.**" in text and "must not be used" in text
    assert "**biomed** domain" in text
    assert "| prepare | 40 | corrupt or unreadable image: 2, image file missing: 1 |" in text
    assert "| generate | 38 | answer leaks the caption: 2 |" in text
    assert "`gpt-4o`" in text and "prompt_tokens: 12000" in text  # generation backend and accounting
    assert "| benchmark | metric | kind | this model | before training |" in text
    assert "| vqa_rad | closed_accuracy | primary score | 0.6667 | 0.3333 |" in text  # with the before-training column
    assert "| vqa_rad | closed_no_answer | diagnostic | 0.3333 | 0.3333 |" in text
    assert "| vqa_rad | n_closed | count | 3 | 3 |" in text  # counts as integers, labelled as counts
    assert "| vqa_rad | num_items | count | 5 | – |" in text
    assert "reference level" not in text  # the VQA metrics have no chance level
    assert "recipe.yaml" in text
    assert 'PeftModel.from_pretrained(base, "someone/llava-med-tiny")' in text
    assert 'from_pretrained("llava-hf/llava-1.5-7b-hf"' in text
    assert "LoRA adapter on the language model (r=4, alpha=8)" in text


def test_card_is_deterministic(run_dir: Path) -> None:
    assert str(card_of(run_dir)) == str(card_of(run_dir))


def test_merged_card_is_a_transformers_finetune(run_dir: Path) -> None:
    card = card_of(run_dir, "merged", revision="v1")
    assert card.data.library_name == "transformers"
    assert card.data.to_dict()["base_model_relation"] == "finetune"
    assert 'AutoModelForImageTextToText.from_pretrained("someone/llava-med-tiny", revision="v1"' in card.text
    assert "PeftModel" not in card.text


def test_tiny_model_has_no_base_model(run_dir: Path) -> None:
    write_recipe(run_dir, model={"source": "tiny"}, domain="general", data={"source": "shapes"})
    card = card_of(run_dir, notices=domain_notices("general"))
    data = card.data.to_dict()
    assert "base_model" not in data and "base_model_relation" not in data
    assert "not on the Hub" in card.text and "--merged" in card.text
    assert "clinical" not in card.text  # the disclaimer is the biomed plugin's card notice
    assert "general" in data["tags"]


def test_components_base_model_is_the_language_model(run_dir: Path) -> None:
    model = {
        "source": "components",
        "vision_tower": "openai/clip-vit-large-patch14-336",
        "language_model": "lmsys/vicuna-7b-v1.5",
    }
    write_recipe(run_dir, model=model)
    card = card_of(run_dir)
    assert card.data.base_model == "lmsys/vicuna-7b-v1.5"
    assert "openai/clip-vit-large-patch14-336" in card.text


def test_local_checkpoint_is_never_a_base_model(run_dir: Path, tmp_path: Path) -> None:
    local = tmp_path / "my-llava"
    local.mkdir()
    write_recipe(run_dir, model={"source": "llava", "name_or_path": str(local)})
    card = card_of(run_dir)
    assert card.data.base_model is None
    assert str(tmp_path) not in str(card).replace(str(run_dir), "")


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("llava-hf/llava-1.5-7b-hf", "llava-hf/llava-1.5-7b-hf"),
        (
            "/home/u/.cache/huggingface/hub/models--llava-hf--llava-1.5-7b-hf/snapshots/abc123",
            "llava-hf/llava-1.5-7b-hf",
        ),
        ("/runs/biomed/align", None),
        ("./models/llava", None),
        ("~/llava", None),
        ("not a/valid id!", None),
        (None, None),
    ],
)
def test_hub_id(reference: str | None, expected: str | None) -> None:
    assert hub_id(reference) == expected


def test_evaluation_not_run_is_stated(run_dir: Path) -> None:
    write_manifest(
        run_dir, {"prepare": "complete", "generate": "complete", "align": "complete", "instruct": "complete"}
    )
    card = card_of(run_dir)
    assert card.data.eval_results is None
    assert "Not evaluated" in card.text


def test_failed_evaluation_publishes_no_stale_metrics(run_dir: Path) -> None:
    stages = dict.fromkeys(["prepare", "generate", "align", "instruct"], "complete") | {"evaluate": "failed"}
    write_manifest(run_dir, stages)
    text = card_of(run_dir).text
    assert "did not complete (status 'failed')" in text and "0.6667" not in text


@pytest.mark.parametrize("status", [None, "failed", "interrupted"])
def test_run_without_completed_instruct_says_which_stage_to_run(run_dir: Path, status: str | None) -> None:
    stages = {"prepare": "complete", "generate": "complete", "align": "complete"}
    if status:
        stages["instruct"] = status
    write_manifest(run_dir, stages)
    with pytest.raises(PublishError, match=r"instruct stage .* has not completed .*llava-adapt recipe run"):
        load_run(run_dir)


def test_not_a_run_directory(tmp_path: Path) -> None:
    with pytest.raises(PublishError, match="not a llava-adapt run directory"):
        load_run(tmp_path)


def test_adapter_without_weights(run_dir: Path) -> None:
    (run_dir / "instruct" / "adapter_model.safetensors").unlink()
    with pytest.raises(PublishError, match="no adapter_model.safetensors"):
        load_run(run_dir)


def test_malformed_metrics_name_the_file(run_dir: Path) -> None:
    path = run_dir / "eval" / "slake" / "metrics.json"
    path.write_text("[1, 2", encoding="utf-8")
    with pytest.raises(PublishError, match=r"slake/metrics.json is not valid JSON"):
        read_metrics(path)


def test_card_shows_the_without_align_column_when_measured(run_dir: Path) -> None:
    import json

    path = run_dir / "eval" / "vqa_rad" / "metrics.json"
    data = json.loads(path.read_text())
    assert "without align" not in card_of(run_dir).text
    data["without_align"] = {"closed_accuracy": 0.5, "open_recall": 0.45, "n_closed": 3.0}
    path.write_text(json.dumps(data))
    text = card_of(run_dir).text
    assert "| benchmark | metric | kind | this model | before training | without align |" in text
    assert "| vqa_rad | closed_accuracy | primary score | 0.6667 | 0.3333 | 0.5000 |" in text
    assert "| vqa_rad | n_closed | count | 3 | 3 | 3 |" in text
    assert "| slake | closed_accuracy | primary score | 0.6667 | – | – |" in text
    assert 'LLaVA\'s "no stage 1" ablation' in text


def test_card_of_a_run_from_an_original_checkpoint_names_it_and_says_to_convert(run_dir: Path) -> None:
    write_recipe(run_dir, model={"source": "llava", "name_or_path": "microsoft/llava-med-v1.5-mistral-7b"})
    (run_dir / "converted").mkdir()
    (run_dir / "converted" / "config.json").write_text("{}")
    card = card_of(run_dir)
    assert card.data.to_dict()["base_model"] == "microsoft/llava-med-v1.5-mistral-7b"
    assert card.data.to_dict()["base_model_relation"] == "adapter"
    assert "llava-adapt convert microsoft/llava-med-v1.5-mistral-7b --out base-llava-hf" in card.text
    assert 'from_pretrained("base-llava-hf"' in card.text
