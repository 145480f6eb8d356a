"""LLaVA's ScienceQA prompt formats, the offline generator, the GPT-4 context and the leak filter."""

from __future__ import annotations

import json
import random
import re

import pytest

from llava_adapt.data.records import CaptionRecord
from llava_adapt.domains.scienceqa.conversation import LEAK_PATTERNS, build_context, offline_generator
from llava_adapt.domains.scienceqa.render import render_input, render_output
from llava_adapt.plugin import DataError


def test_qcm_input_as_convert_sqa_to_llava_writes_it() -> None:
    assert render_input("Which is a mammal?", "", ["cat", "fish"]) == (
        "Which is a mammal?\nContext: N/A\nOptions: (A) cat (B) fish"
    )
    assert render_input("Which is a mammal?", "A zoo.", ["cat", "fish"], "CQM") == (
        "Context: A zoo.\nQuestion: Which is a mammal?\nOptions: (A) cat (B) fish"
    )
    # "  " -> " " once (LLaVA's single replace), and every "Question: " goes once the text starts with one
    assert render_input("Is  it?", "Question: why?", ["a", "b"]) == "Is it?\nContext: why?\nOptions: (A) a (B) b"


def test_outputs_as_convert_sqa_to_llava_writes_them() -> None:
    assert render_output("L.", "S.", 1, "LEA") == "L. S. The answer is B."
    assert render_output("", "S.", 1, "LEA") == "S. The answer is B."  # "Answer:  S." -> "Answer: S." -> "S. ..."
    assert render_output("L.", "S.", 0, "A") == "The answer is A."
    assert render_output("", "S.", 2, "LEPA") == "SOLUTION: S.\n###\nANSWER: C."
    with pytest.raises(ValueError, match="unknown ScienceQA output format"):
        render_output("L", "S", 0, "XYZ")  # type: ignore[arg-type]


def _record(**labels: str) -> CaptionRecord:
    base = {
        "question": "Which color is the square?",
        "hint": "",
        "choices": json.dumps(["red", "blue"]),
        "answer": "B",
        "lecture": "Colors are light.",
        "solution": "The square is blue.",
    }
    context = {"question": base["question"], "answer": "(B) blue", "secret_patient_name": "Jane Doe"}
    return CaptionRecord(id="7", image="x.png", caption="Which color?", context=context, labels=base | labels)


def test_offline_generator_writes_llava_turns() -> None:
    turns = offline_generator(_record(), "explanation", random.Random(0))
    assert [t["from"] for t in turns] == ["human", "gpt", "human", "gpt"]
    assert turns[0]["value"] == (
        "<image>\nWhich color is the square?\nContext: N/A\nOptions: (A) red (B) blue\n"
        "Answer with the option's letter from the given choices directly."
    )
    assert turns[1]["value"] == "B"
    assert turns[3]["value"] == "Colors are light. The square is blue. The answer is B."
    assert turns == offline_generator(_record(), "explanation", random.Random(0))  # deterministic in the seed


def test_offline_generator_without_explanation_is_one_exchange() -> None:
    turns = offline_generator(_record(lecture="", solution=""), "explanation", random.Random(0))
    assert len(turns) == 2


@pytest.mark.parametrize(
    ("labels", "message"),
    [({"answer": ""}, "no label"), ({"choices": "not json"}, "not JSON"), ({"answer": "C"}, "not one of the 2")],
)
def test_offline_generator_rejects_bad_labels(labels: dict[str, str], message: str) -> None:
    with pytest.raises(DataError, match=message):
        offline_generator(_record(**labels), "explanation", random.Random(0))


def test_build_context_uses_only_allow_listed_fields() -> None:
    text = build_context(_record())
    assert text == "Question: Which color is the square?\nAnswer: (B) blue"
    assert "Jane" not in text


def test_leak_patterns() -> None:
    compiled = [re.compile(p) for p in LEAK_PATTERNS]

    def leaks(text: str) -> bool:
        return any(p.search(text) for p in compiled)

    assert leaks("According to the lecture, hares have big feet.")
    assert leaks("The solution says the answer is B.")
    assert leaks("I can't see the image, but the answer is A.")
    assert not leaks("The snowshoe hare has large, furry feet, so the answer is A.")
