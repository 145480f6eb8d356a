"""LLaVA's ScienceQA answer parser and the official per-category accuracies, on worked examples."""

from __future__ import annotations

import random

import pytest

from llava_adapt.data.records import VQAItem
from llava_adapt.domains.scienceqa.metrics import categories, scienceqa_metrics, score_indices
from llava_adapt.domains.scienceqa.parsing import FAILED, answer_index, parse_answer, parse_answer_regex


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A", "A"),  # step 1: the whole text is a letter
        ("E", "E"),  # any of A-E, whatever the number of choices (answer_index decides)
        ("a", FAILED),  # case-sensitive
        ("B\n", FAILED),  # no stripping inside the parser
        ("C. wood", "C"),  # step 2: letter + ". "
        ("C.", FAILED),  # step 2 needs 3 characters
        ("F. x", FAILED),  # step 2 only knows A-E; no regex match either
        ("The answer is D.", "D"),  # step 3
        ("The answer is D!", "D"),  # the regex's final "." is unescaped: any character
        ("The answer is D", FAILED),  # ... but there must be one
        ("Because... The answer is B. Done", "B"),
        ("The answer is A. The answer is A.", FAILED),  # two matches fail, even when they agree
        ("The answer is F.", "F"),  # [A-Z]: parsed, but not a choice (answer_index gives -1)
        ("B. The answer is C.", "B"),  # step 2 wins over step 3
        ("", FAILED),
    ],
)
def test_parse_answer_matches_llava_eval_science_qa(text: str, expected: str) -> None:
    assert parse_answer(text) == expected


def test_regex_parser_of_the_gpt4_scripts() -> None:
    assert parse_answer_regex("B") == FAILED  # no single-letter rule in eval_science_qa_gpt4*.py
    assert parse_answer_regex("B. The answer is C.") == "C"
    assert parse_answer_regex("The answer is C. The answer is C.") == FAILED


def test_answer_index_like_get_pred_idx() -> None:
    assert answer_index("C", 3) == 2
    assert answer_index("D", 3) == -1  # a letter beyond the choices is no answer
    assert answer_index(FAILED, 3) == -1
    guesses = [answer_index(FAILED, 3, random.Random(7)) for _ in range(3)]
    assert guesses == [guesses[0]] * 3 and 0 <= guesses[0] < 3  # seeded guess: repeatable
    assert answer_index("B", 3, random.Random(7)) == 1  # a valid letter is never replaced


def _item(pid: str, subject: str, grade: str, hint: bool, image: bool, n: int, answer: int) -> VQAItem:
    meta = {"subject": subject, "grade": grade, "has_hint": hint, "has_image": image, "answer_index": answer}
    return VQAItem(pid, "x.png", "q", "ABCDE"[answer], "closed", choices=[f"c{i}" for i in range(n)], meta=meta)


# id  subject  grade    hint image  n ans | prediction                           parsed  right?
# a   NAT      grade3   -    IMG    3  B  | "B"                                  B       yes
# b   NAT      grade9   TXT  -      2  A  | "The answer is A."                   A       yes
# c   SOC      grade5   TXT  IMG    4  D  | "C. wood"                            C       no
# d   LAN      grade11  -    -      2  B  | "E"                                  E->-1   no (E is not one of 2 choices)
# e   LAN      grade2   -    -      3  A  | "The answer is A. The answer is A."  FAILED  no
# f   SOC      grade12  -    IMG    2  A  | "  A\n"  (stripped, as LLaVA's inference does)  A  yes
ITEMS = [
    _item("a", "natural science", "grade3", False, True, 3, 1),
    _item("b", "natural science", "grade9", True, False, 2, 0),
    _item("c", "social science", "grade5", True, True, 4, 3),
    _item("d", "language science", "grade11", False, False, 2, 1),
    _item("e", "language science", "grade2", False, False, 3, 0),
    _item("f", "social science", "grade12", False, True, 2, 0),
]
PREDICTIONS = ["B", "The answer is A.", "C. wood", "E", "The answer is A. The answer is A.", "  A\n"]


def test_worked_example_overall_and_per_category() -> None:
    scores = scienceqa_metrics(ITEMS, PREDICTIONS)
    # Avg: a, b, f right -> 3/6 = 50.00
    assert scores["accuracy"] == pytest.approx(50.0)
    assert (scores["count"], scores["correct"]) == (6, 3)
    # NAT {a, b} both right -> 100; SOC {c x, f ok} -> 50; LAN {d x, e x} -> 0
    assert scores["NAT"] == pytest.approx(100.0)
    assert scores["SOC"] == pytest.approx(50.0)
    assert scores["LAN"] == pytest.approx(0.0)
    # TXT {b ok, c x} -> 50; IMG {a ok, c x, f ok} -> 2/3 = 66.67; NO {d x, e x} -> 0
    assert scores["TXT"] == pytest.approx(50.0)
    assert scores["IMG"] == pytest.approx(200 / 3)
    assert scores["NO"] == pytest.approx(0.0)
    # G1-6 {a ok, c x, e x} -> 1/3 = 33.33; G7-12 {b ok, d x, f ok} -> 2/3 = 66.67
    assert scores["G1-6"] == pytest.approx(100 / 3)
    assert scores["G7-12"] == pytest.approx(200 / 3)
    assert (scores["n_TXT"], scores["n_IMG"], scores["n_NO"]) == (2, 3, 2)
    # only e is unparseable; d parsed to a letter that is not a choice
    assert scores["parse_failed"] == 1


def test_categories_follow_evaluate_acc() -> None:
    # TXT and IMG overlap; NO is neither; unknown subject/grade fall in no subject/grade bucket
    assert categories({"subject": "social science", "grade": "grade5", "has_hint": True, "has_image": True}) == [
        "SOC",
        "TXT",
        "IMG",
        "G1-6",
    ]
    assert categories({"subject": "art", "grade": "grade13", "has_hint": False, "has_image": False}) == ["NO"]
    assert categories({"pid": "1"}) == []  # no metadata (a bare LLaVA JSON): only the overall accuracy


def test_empty_categories_are_left_out_not_zero() -> None:
    scores = score_indices(ITEMS[:2], [1, 0])  # both NAT
    assert "SOC" not in scores and "LAN" not in scores and "n_SOC" not in scores
    assert scores["accuracy"] == 100.0


def test_metrics_reject_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="6 items but 5 predictions"):
        scienceqa_metrics(ITEMS, PREDICTIONS[:5])
    with pytest.raises(ValueError, match="no items"):
        scienceqa_metrics([], [])


def test_gold_from_answer_letter_without_meta_index() -> None:
    item = VQAItem("z", "x.png", "q", "B", "closed", choices=["x", "y"], meta={})
    assert scienceqa_metrics([item], ["B"])["accuracy"] == 100.0
    assert scienceqa_metrics([item], ["The answer is A."])["accuracy"] == 0.0


def test_the_correct_column_agrees_with_the_metric() -> None:
    from llava_adapt.domains.scienceqa.metrics import answer_correct
    from llava_adapt.evaluate.metrics import is_correct

    column = [answer_correct(item, prediction) for item, prediction in zip(ITEMS, PREDICTIONS, strict=True)]
    assert column == [True, True, False, False, False, True]  # the table above
    assert 100 * sum(column) / len(column) == scienceqa_metrics(ITEMS, PREDICTIONS)["accuracy"]
    assert not is_correct(ITEMS[1], PREDICTIONS[1])  # the generic rule cannot read "The answer is A."
