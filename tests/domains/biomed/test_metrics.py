"""Worked examples for the medical VQA metrics, including where LLaVA-Med's evaluation code gives other numbers."""

from __future__ import annotations

from collections import Counter

import pytest

from llava_adapt.data.records import VQAItem
from llava_adapt.domains.biomed.metrics import (
    closed_candidates,
    closed_correct,
    exact_match,
    metrics_by,
    normalize_answer,
    parse_closed,
    token_f1,
    token_recall,
    vqa_metrics,
)


def closed(answer: str, choices: list[str] | None = None, **meta) -> VQAItem:
    return VQAItem(
        id=answer, image="x.png", question="q", answer=answer, answer_type="closed", choices=choices or [], meta=meta
    )


def opened(answer: str, **meta) -> VQAItem:
    return VQAItem(id=answer, image="x.png", question="q", answer=answer, answer_type="open", meta=meta)


def llava_med_closed_accuracy(items: list[VQAItem], predictions: list[str]) -> float:
    """LLaVA-Med v1.0's closed score as the reference describes it (kept here only to show the difference):
    a hit when the lower-cased reference is a substring of the prediction; a miss that still says "yes" or "no"
    (as a substring) appends nothing; any other miss appends 0."""
    scores = []
    for item, prediction in zip(items, predictions, strict=True):
        gt, pred = item.answer.lower(), prediction.lower()
        if gt in pred:
            scores.append(1)
        elif "yes" in pred or "no" in pred:
            continue
        else:
            scores.append(0)
    return sum(scores) / len(scores)


def llava_med_recall(prediction: str, reference: str) -> float:
    """LLaVA-Med's `calculate_f1score` recall: true positives add the *prediction's* count of a shared word."""
    cand, ref = Counter(normalize_answer(prediction).split()), Counter(normalize_answer(reference).split())
    tp = sum(cand[w] for w in cand if w in ref)
    fn = sum(ref[w] for w in ref if w not in cand)
    return tp / (tp + fn) if tp else 0.0


def test_normalize_answer_vqa_style():
    assert normalize_answer("  The Left LUNG. ") == "left lung"
    assert normalize_answer("Two nodules, 3.5 cm!") == "2 nodules 3.5 cm"
    assert normalize_answer("X-ray") == "x ray"
    assert normalize_answer("an MRI_scan") == "mri scan"


@pytest.mark.parametrize(
    ("prediction", "expected"),
    [
        ("Yes.", "yes"),
        ("No, there is no nodule.", "no"),
        ("Yes, no effusion is seen.", "yes"),
        ("There is a nodule", None),  # "no" inside "nodule" is not the word "no"
        ("I do not know", None),  # "no" inside "not" and "know"
        ("", None),
    ],
)
def test_parse_closed_reads_the_first_whole_word_candidate(prediction, expected):
    assert parse_closed(prediction, ["yes", "no"]) == expected


def test_parse_closed_multiword_and_ties():
    assert parse_closed("This is an X-ray of the chest.", ["x ray", "ct", "mri"]) == "x ray"
    assert parse_closed("The lesion is on the right side, not the left.", ["left", "right"]) == "right"
    assert parse_closed("left lower lobe", ["left", "left lower lobe"]) == "left lower lobe"


def test_closed_candidates():
    assert closed_candidates(closed("Yes")) == ["yes", "no"]
    assert closed_candidates(closed("ct", ["X-ray", "CT", "MRI"])) == ["x ray", "ct", "mri"]
    assert closed_candidates(closed("liver")) == ["liver"]
    assert closed_candidates(closed("liver", ["heart", "lung"])) == ["heart", "lung", "liver"]


def test_closed_accuracy_counts_wrong_yes_no_answers_where_llava_med_does_not():
    items = [closed("yes"), closed("no"), closed("no"), closed("yes")]
    predictions = ["Yes, there is.", "Yes, clearly.", "There is a nodule.", "No."]
    ours = vqa_metrics(items, predictions)
    # Right: item 1 only. Item 2 and 4 say the wrong word; item 3 names no answer.
    assert ours["closed_accuracy"] == pytest.approx(0.25)
    assert ours["closed_no_answer"] == pytest.approx(0.25)
    # LLaVA-Med: item 1 hit; item 2 and 4 contain "yes"/"no" so they vanish from the denominator; item 3 "no" is
    # a substring of "nodule" -> a hit. 2 hits out of 2 counted.
    assert llava_med_closed_accuracy(items, predictions) == pytest.approx(1.0)


def test_closed_accuracy_substring_false_positive():
    items = [closed("no")]
    assert vqa_metrics(items, ["I do not know."])["closed_accuracy"] == 0.0
    assert llava_med_closed_accuracy(items, ["I do not know."]) == 1.0


def test_open_recall_clips_repeated_words_where_llava_med_does_not():
    assert token_recall("lung lung lung", "left lung") == pytest.approx(0.5)
    assert llava_med_recall("lung lung lung", "left lung") == pytest.approx(0.75)
    # Where there is no repetition both agree.
    assert token_recall("the right upper lobe of the lung", "right lung") == pytest.approx(1.0)
    assert llava_med_recall("the right upper lobe of the lung", "right lung") == pytest.approx(1.0)
    assert token_recall("a mass", "left upper lobe mass") == pytest.approx(0.25)


def test_token_f1_and_exact_match():
    assert token_f1("left lung", "left lung") == 1.0
    assert token_f1("the left lower lung", "left lung") == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))
    assert token_f1("heart", "left lung") == 0.0
    assert token_f1("", "") == 1.0
    assert exact_match("The liver.", "liver") == 1.0
    assert exact_match("liver and spleen", "liver") == 0.0


def test_vqa_metrics_worked_example():
    items = [closed("yes"), closed("left", ["left", "right"]), opened("left lung"), opened("liver")]
    predictions = ["yes", "The lesion is on the right side.", "It is in the left upper lung.", "liver"]
    out = vqa_metrics(items, predictions)
    assert out["closed_accuracy"] == pytest.approx(0.5)
    assert out["open_recall"] == pytest.approx(1.0)
    assert out["exact_match"] == pytest.approx(0.5)  # "yes" and "liver"
    assert out["n_closed"] == 2.0 and out["n_open"] == 2.0
    assert all(isinstance(v, float) for v in out.values())


def test_vqa_metrics_groups_and_missing_kinds():
    items = [closed("yes", kind="lesion"), closed("no", kind="lesion"), closed("left", ["left", "right"], kind="side")]
    out = metrics_by("kind")(items, ["yes", "yes", "left"])
    assert out["closed_accuracy/lesion"] == pytest.approx(0.5)
    assert out["closed_accuracy/side"] == pytest.approx(1.0)
    assert "open_recall" not in out  # no open items: no made-up number


def test_vqa_metrics_length_mismatch():
    with pytest.raises(ValueError, match="1 items but 2 predictions"):
        vqa_metrics([closed("yes")], ["yes", "no"])


def test_the_correct_column_agrees_with_closed_accuracy():
    from llava_adapt.evaluate.metrics import is_correct

    items = [
        closed("yes"),
        closed("no"),
        closed("left", ["left", "right"]),
        closed("yes"),
        closed("ct", ["ct", "mri"]),
    ]
    predictions = ["Yes, though no effusion.", "No.", "On the right, not the left.", "nodule", "An MRI slice."]
    column = [closed_correct(item, p) for item, p in zip(items, predictions, strict=True)]
    assert column == [True, True, False, False, False]  # first candidate named; "nodule" names none
    assert sum(column) / len(column) == pytest.approx(vqa_metrics(items, predictions)["closed_accuracy"])
    assert not is_correct(items[0], predictions[0])  # the generic rule sees both yes and no: where they differ
