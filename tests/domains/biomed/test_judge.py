"""The GPT-4-judged relative score: prompt construction, reply parsing, aggregation — offline."""

from __future__ import annotations

import pytest

from llava_adapt.data.records import VQAItem
from llava_adapt.domains.biomed.judge import (
    JUDGE,
    JUDGE_RULE,
    JUDGE_SYSTEM,
    ChatQuestion,
    Judgement,
    judge_messages,
    parse_scores,
    relative_scores,
)

# LLaVA-Med's INSTRUCT_PROMPT as its eval_multimodal_chat_gpt_score.py writes it (a triple-quoted string whose
# continuation lines are indented by two spaces).
LLAVA_MED_INSTRUCT_PROMPT = """We would like to request your feedback on the performance of two AI assistants in response to the user question displayed above. The user asks the question on observing an image. For your reference, the visual content in the image is represented with caption describing the same image.
  Please rate the helpfulness, relevance, accuracy, level of details of their responses. Each assistant receives an overall score on a scale of 1 to 10, where a higher score indicates better overall performance.
  Please first output a single line containing only two values indicating the scores for Assistant 1 and 2, respectively. The two scores are separated by a space. In the subsequent line, please provide a comprehensive explanation of your evaluation, avoiding any potential bias and ensuring that the order in which the responses were presented does not affect your judgment."""  # noqa: E501


def question(qid: str = "q1", category: str = "conversation", domain: str = "ct_scan") -> ChatQuestion:
    return ChatQuestion(
        id=qid,
        question="What does the image show?",
        caption="Figure 2: Axial CT showing a hypodense liver lesion.",
        reference="A CT slice with a dark lesion in the liver.",
        mentions=("The lesion (Fig. 2) measured 3 cm.",),
        category=category,
        domain=domain,
    )


def test_judge_messages_layout():
    messages = judge_messages(question(), "A liver lesion on CT.")
    assert messages[0] == {"role": "system", "content": JUDGE_SYSTEM}
    user = messages[1]["content"]
    assert user.startswith("[Context]\nFigure Caption:\nFigure 2: Axial CT")
    assert "Figure Context:\n\t- The lesion (Fig. 2) measured 3 cm." in user
    assert "[Question]\nWhat does the image show?" in user
    # The reference is Assistant 1, the model Assistant 2 — parse_scores relies on this order.
    assert (
        user.index("A CT slice with a dark lesion")
        < user.index("[End of Assistant 1]")
        < user.index("A liver lesion on CT.")
    )
    assert "two values" in user and user.rstrip().endswith("affect your judgment.")


def test_judge_rule_is_llava_meds_text_exactly():
    assert JUDGE_RULE == LLAVA_MED_INSTRUCT_PROMPT
    user = judge_messages(question(), "A liver lesion on CT.")[1]["content"]
    assert user.endswith(f"[System]\n{LLAVA_MED_INSTRUCT_PROMPT}\n\n")


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("8 6\nAssistant 1 is more detailed.", (8.0, 6.0)),
        ("\n 7.5, 9 \nreason", (7.5, 9.0)),
        ("Score: 8 6", None),
        ("8 6 7", None),
        ("8\n6", None),
        ("11 3", None),
        ("", None),
    ],
)
def test_parse_scores(reply, expected):
    assert parse_scores(reply) == expected


def test_relative_scores_both_aggregations():
    judgements = [
        Judgement(question("a", "conversation", "ct_scan"), (8.0, 4.0), ""),
        Judgement(question("b", "detailed_description", "mri"), (4.0, 4.0), ""),
        Judgement(question("c"), None, "garbage"),
        Judgement(question("d", "conversation", "mri"), (0.0, 5.0), ""),
    ]
    out = relative_scores(judgements)
    # Mean of per-item ratios (LLaVA-Med): (50 + 100) / 2; item d has a zero reference and is left out of it.
    assert out["relative_score"] == pytest.approx(75.0)
    # Ratio of means (LLaVA): mean model (4+4+5)/3 over mean reference (8+4+0)/3.
    assert out["relative_score_ratio_of_means"] == pytest.approx(13 / 12 * 100)
    assert out["judge_failures"] == 1.0 and out["zero_reference"] == 1.0 and out["n_scored"] == 3.0
    assert out["relative_score/conversation"] == pytest.approx(50.0)
    assert out["relative_score/detailed_description"] == pytest.approx(100.0)
    assert out["relative_score/mri"] == pytest.approx(100.0)


def test_judge_contract_adaptors_build_requests_and_score_replies():
    item = VQAItem(
        id="llava_med_chat-7",
        image="images/a.png",
        question="What imaging technique was used?",
        answer="Single photon emission computed tomography (SPECT).",
        answer_type="open",
        meta={"caption": "Figure 3: SPECT images.", "mentions": ["decreased CBF (figure 3)."], "category":
              "conversation", "domain": "ct_scan"},
    )  # fmt: skip
    request = JUDGE.messages(item, "A SPECT scan.")
    content = request[1]["content"]
    assert "Figure Caption:\nFigure 3: SPECT images." in content
    assert "\t- decreased CBF (figure 3)." in content
    assert "[Assistant 1]\nSingle photon emission computed tomography (SPECT)." in content
    assert "[Assistant 2]\nA SPECT scan." in content
    out = JUDGE.score([item, item, item], ["8 4\nfine", "no scores here", None])
    assert out["relative_score"] == pytest.approx(50.0)
    assert out["relative_score/ct_scan"] == pytest.approx(50.0)
    assert (out["n_scored"], out["judge_failures"]) == (1.0, 2.0)
    with pytest.raises(ValueError):
        JUDGE.score([item], [])
