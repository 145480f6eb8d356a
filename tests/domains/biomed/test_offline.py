"""The offline generator, the generator context and the leak filter of the biomed domain."""

from __future__ import annotations

import random
import re

import pytest

from llava_adapt.data.records import CaptionRecord
from llava_adapt.domain import check_domain
from llava_adapt.domains.biomed import domain
from llava_adapt.domains.biomed.metrics import parse_closed
from llava_adapt.domains.biomed.questions import QUESTIONS, short_answer

LESION = CaptionRecord(
    id="s1",
    image="synthetic/train/00001.png",
    caption="A CT scan of the abdomen showing a large bright round lesion on the left side of the image.",
    context={"modality": "CT", "body_part": "abdomen", "patient_name": "Doe^John"},
    labels={"modality": "ct", "body_part": "abdomen", "lesion": "yes", "side": "left", "size": "large"},
)
FIGURE = CaptionRecord(
    id="32432162_F1",
    image="images/32432162_F1.jpg",
    caption="Chest radiograph showing bilateral opacities.",
    context={
        "figure_label": "Figure 1",
        "in_text_mentions": "First mention.\nSecond mention.",
        "modality": "chest X-ray",
    },
    labels={"pmid": "32432162", "modality": "chest x-ray"},
)


def leaks(text: str) -> bool:
    return any(re.search(pattern, text) for pattern in domain.leak_patterns)


def test_domain_passes_the_contract_and_loads_through_the_registry():
    from llava_adapt.registry import registry

    assert check_domain(domain, "biomed") is domain
    assert registry.get("biomed") is domain
    assert set(domain.sources) == {"figures", "dicom", "synthetic"}
    assert set(domain.benchmarks) == {"vqa_rad", "slake", "path_vqa", "llava_med_chat", "synthetic"}
    for source in domain.sources.values():
        assert source.args.model_json_schema()["additionalProperties"] is False


def test_build_context_uses_caption_and_allow_listed_context_only():
    text = domain.build_context(FIGURE)
    assert text == (
        "Figure Caption:\nFigure 1: Chest radiograph showing bilateral opacities.\n\n"
        "Figure Context:\n\t- First mention.\n\t- Second mention.\n\n"
        "Image Information:\n\t- Modality: chest X-ray"
    )
    lesion = domain.build_context(LESION)
    assert "Doe" not in lesion and "patient" not in lesion  # not on the allow-list
    assert "left" in lesion  # from the caption, which is allowed
    assert "size" not in lesion and "large\n" not in lesion  # labels never reach the prompt
    assert "patient_name" not in domain.context_fields


def test_conversation_turns_and_image_token():
    rng = random.Random(0)
    for record in (LESION, FIGURE):
        for _ in range(20):
            turns = domain.offline_generator(record, "conversation", rng)
            assert len(turns) >= 4 and len(turns) % 2 == 0
            assert [t["from"] for t in turns] == ["human", "gpt"] * (len(turns) // 2)
            assert turns[0]["value"].startswith("<image>\n")
            assert sum("<image>" in t["value"] for t in turns) == 1
            assert not any(leaks(t["value"]) for t in turns)


def test_record_without_labels_gets_a_description_turn():
    record = CaptionRecord(id="p", image="p.jpg", caption="Gross specimen of a resected kidney.")
    turns = domain.offline_generator(record, "conversation", random.Random(0))
    assert turns[0]["value"].startswith("<image>\n") and turns[1]["value"] == record.caption and len(turns) == 2


def test_detailed_description_answers_with_the_caption():
    turns = domain.offline_generator(FIGURE, "detailed_description", random.Random(1))
    assert len(turns) == 2 and turns[1]["value"] == FIGURE.caption


@pytest.mark.parametrize("labels", [LESION.labels, {"modality": "x-ray", "body_part": "chest", "lesion": "no"}])
def test_generated_answers_score_as_right_under_the_benchmark_metric(labels):
    """The generator teaches exactly the answers the synthetic benchmark's closed parser reads."""
    record = CaptionRecord(id="r", image="r.png", caption="c", labels=labels)
    seen = set()
    rng = random.Random(2)
    for _ in range(30):
        turns = domain.offline_generator(record, "conversation", rng)
        for question, answer in zip(turns[::2], turns[1::2], strict=True):
            text = question["value"].removeprefix("<image>\n")
            kind = next((k for k, phrasings in QUESTIONS.items() if text in phrasings), None)
            if kind in ("lesion", "side", "modality"):
                seen.add(kind)
                candidates = {"lesion": ["yes", "no"], "side": ["left", "right"], "modality": ["x ray", "ct", "mri"]}
                expected = short_answer(kind, labels).replace("-", " ")
                assert parse_closed(answer["value"], candidates[kind]) == expected
    assert seen == ({"lesion", "side", "modality"} if labels["lesion"] == "yes" else {"lesion", "modality"})


@pytest.mark.parametrize(
    "text",
    [
        "The caption says there is a mass.",
        "Based on the provided context, the lesion is benign.",
        "As mentioned in the text, the scan is normal.",
        "According to the figure caption, this is a CT.",
        "I cannot see the actual image, but it probably shows a lung.",
        "The in-text mention refers to a nodule.",
    ],
)
def test_leak_patterns_catch_text_giveaways(text):
    assert leaks(text)


@pytest.mark.parametrize(
    "text",
    [
        "The image shows a large bright lesion on the left side of the image.",
        "This is a CT scan of the abdomen; the context of the finding suggests a cyst.",
        "No, there is no lesion in this image.",
    ],
)
def test_leak_patterns_leave_ordinary_answers_alone(text):
    assert not leaks(text)
