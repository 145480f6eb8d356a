"""LLaVA-Bench's GPT-4-judged relative score: the request per category, LLaVA's score parsing, the aggregation, and
the whole loop through a real OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llava_adapt.data.records import VQAItem
from llava_adapt.domain import SourceContext
from llava_adapt.domains.general import domain
from llava_adapt.domains.general.llava_bench import LlavaBenchCocoArgs, LlavaBenchWildArgs, load_coco, load_wild
from llava_adapt.domains.general.llava_bench_judge import (
    COCO_RULE,
    JUDGE,
    JUDGE_SYSTEM,
    RULES,
    WILD_RULE,
    judge_messages,
    parse_scores,
    relative_scores,
)
from llava_adapt.evaluate.config import JudgeConfig
from llava_adapt.evaluate.judge import judge_answers
from llava_adapt.plugin import DataError
from llava_adapt.recipe.loader import check_against_domain
from llava_adapt.recipe.schema import Recipe
from llava_adapt.run.layout import RunLayout
from llava_adapt.stages import evaluate as evaluate_stage
from llava_adapt.stages.context import StageContext
from tests.generate.fake_openai import FakeOpenAI

from .llava_bench_files import SUITCASE_CONTEXT, WILD_ARGS, WILD_CAPTION_1, write_coco_bench, write_wild_bench

KEY_ENV = "LLAVA_ADAPT_TEST_JUDGE_KEY"


def _coco_items(root: Path) -> list[VQAItem]:
    write_coco_bench(root)
    return list(load_coco(LlavaBenchCocoArgs(), SourceContext(data_root=root, output_dir=root / "out")))


def _wild_items(root: Path) -> list[VQAItem]:
    write_wild_bench(root)
    return list(load_wild(LlavaBenchWildArgs(**WILD_ARGS), SourceContext(data_root=root, output_dir=root / "out")))


def test_coco_request_is_llavas_layout(tmp_path: Path) -> None:
    item = _coco_items(tmp_path)[0]
    request = JUDGE.messages(item, "Black and brown.")
    assert request[0] == {"role": "system", "content": JUDGE_SYSTEM}
    assert JUDGE_SYSTEM == "You are a helpful and precise assistant for checking the quality of the answer."
    assert request[1]["role"] == "user" and len(request) == 2
    assert request[1]["content"] == (
        f"[Context]\n{SUITCASE_CONTEXT}\n\n"
        "[Question]\nWhat is the color of the two suitcases in the image?\n\n"
        "[Assistant 1]\nThe colors of the two suitcases in the image are black and brown with yellow details.\n\n"
        "[End of Assistant 1]\n\n"
        "[Assistant 2]\nBlack and brown.\n\n[End of Assistant 2]\n\n"
        f"[System]\n{COCO_RULE}\n\n"
    )


def test_the_rule_follows_the_benchmark_and_category(tmp_path: Path) -> None:
    coco, wild = _coco_items(tmp_path / "coco"), _wild_items(tmp_path / "wild")
    for item in coco[:3]:  # conv, detail, complex
        content = JUDGE.messages(item, "a")[1]["content"]
        assert content.endswith(f"[System]\n{RULES[item.meta['category']]}\n\n")
        assert "five descriptive sentences" in content and "(x1, y1, x2, y2)" in content
    for item in wild:
        content = JUDGE.messages(item, "a")[1]["content"]
        assert content.endswith(f"[System]\n{RULES['llava_bench_' + item.meta['category']]}\n\n")
        assert "represented with a few sentences describing the image" in content and "(x1, y1" not in content
    assert JUDGE.messages(wild[0], "a")[1]["content"].startswith(f"[Context]\n{WILD_CAPTION_1}\n\n[Question]\n")
    assert set(RULES) == {"conv", "detail", "complex", "llava_bench_conv", "llava_bench_detail", "llava_bench_complex"}
    for rule in (COCO_RULE, WILD_RULE):  # rule.json's wording, which asks for the scores line parse_scores reads
        assert rule.startswith("We would like to request your feedback on the performance of two AI assistants")
        scores_line = (
            "Please first output a single line containing only two values indicating the scores for Assistant 1 "
            "and 2, respectively. The two scores are separated by a space.\n"
        )
        assert scores_line in rule
        assert rule.endswith("the order in which the responses were presented does not affect your judgment.")
    with pytest.raises(DataError, match="no LLaVA-Bench judge rule 'conversation'"):
        judge_messages("ctx", "q", "ref", "answer", "conversation")


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("8 6\nAssistant 1 gave more detail.", (8.0, 6.0)),
        ("8,6\nreason", (8.0, 6.0)),
        ("7.5 9", (7.5, 9.0)),
        ("10 1", (10.0, 1.0)),
        # LLaVA splits on single spaces, so these fail there; any whitespace run separates here.
        ("8, 6\nreason", (8.0, 6.0)),
        ("8 6 \r\nreason", (8.0, 6.0)),
        ("\n8 6", (8.0, 6.0)),
        # Failures, as in LLaVA: the first line must be exactly two numbers.
        ("Assistant 1: 8\nAssistant 2: 6", None),
        ("Scores: 8 6", None),
        ("8 6 7", None),
        ("8\n6", None),
        ("8/10 6/10", None),
        ("(8, 6)", None),
        ("", None),
        # LLaVA's float() would take these; a score must be a plain number from 0 to 10.
        ("nan 5", None),
        ("80 60", None),
        ("1e1 5", None),
        ("-1 -1", None),
    ],
)
def test_parse_scores(reply: str, expected: tuple[float, float] | None) -> None:
    assert parse_scores(reply) == expected


def test_ratio_of_means_and_mean_of_ratios_differ_on_a_worked_example() -> None:
    categories = ["conv", "conv", "detail", "complex"]
    out = relative_scores(categories, [(8.0, 4.0), (4.0, 4.0), (10.0, 5.0), None])
    # LLaVA's relative score, a ratio of means: mean model (4 + 4 + 5) / 3 over mean reference (8 + 4 + 10) / 3.
    assert out["relative_score"] == pytest.approx(13 / 22 * 100)
    # The mean of per-question ratios: (50 + 100 + 50) / 3.
    assert out["relative_score_mean_of_ratios"] == pytest.approx(200 / 3)
    assert out["reference_score"] == pytest.approx(22 / 3) and out["model_score"] == pytest.approx(13 / 3)
    # Per category: conv is 8 / 12 as a ratio of means but (50 + 100) / 2 as a mean of ratios.
    assert out["relative_score/conv"] == pytest.approx(8 / 12 * 100)
    assert out["relative_score_mean_of_ratios/conv"] == pytest.approx(75.0)
    assert out["relative_score/detail"] == pytest.approx(50.0) and out["model_score/detail"] == 5.0
    assert not any(key.endswith("/complex") for key in out)  # its only reply failed: left out, not averaged as -1
    assert (out["n_scored"], out["judge_failures"], out["zero_reference"]) == (3.0, 1.0, 0.0)


def test_a_zero_reference_score_is_left_out_of_the_mean_of_ratios_only() -> None:
    out = relative_scores(["conv", "conv"], [(0.0, 5.0), (5.0, 5.0)])
    assert out["relative_score"] == pytest.approx(5 / 2.5 * 100)
    assert out["relative_score_mean_of_ratios"] == pytest.approx(100.0) and out["zero_reference"] == 1.0
    only_zero = relative_scores(["conv"], [(0.0, 3.0)])
    assert "relative_score" not in only_zero and "relative_score_mean_of_ratios" not in only_zero
    assert relative_scores(["conv"], [None]) == {"n_scored": 0.0, "judge_failures": 1.0, "zero_reference": 0.0}
    with pytest.raises(ValueError, match="2 categories but 1 scores"):
        relative_scores(["conv", "detail"], [None])


def test_judge_score_counts_unparseable_and_failed_replies(tmp_path: Path) -> None:
    items = _wild_items(tmp_path)
    out = JUDGE.score(items, ["9 6\nfine", "Both are good.", None])
    assert out["relative_score"] == pytest.approx(6 / 9 * 100) and out["relative_score/conv"] == pytest.approx(
        6 / 9 * 100
    )
    assert (out["n_scored"], out["judge_failures"]) == (1.0, 2.0)
    with pytest.raises(ValueError, match="3 items but 1 replies"):
        JUDGE.score(items, [None])


def scores_by_answer(body: dict) -> str:
    """Reference 8; the model 6, or 2 when its answer says 'wrong'; no scores when it says 'garbled'."""
    answer = body["messages"][-1]["content"].split("[Assistant 2]\n", 1)[1]
    if "garbled" in answer:
        return "I cannot compare these answers."
    return ("8 2" if "wrong" in answer else "8 6") + "\nAssistant 1 is more accurate."


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(KEY_ENV, "sk-test-judge")
    with FakeOpenAI(responder=scores_by_answer) as fake:
        yield fake


@pytest.mark.slow
def test_judge_answers_end_to_end(server: FakeOpenAI, tmp_path: Path) -> None:
    items = _coco_items(tmp_path)
    answers = ["Black and brown.", "A wrong description.", "garbled", "A car by a parking meter."]
    config = JudgeConfig(model="judge-test", base_url=server.url, api_key_env=KEY_ENV, temperature=0.2)
    server.fault("500")
    run = judge_answers(JUDGE, items, answers, config, tmp_path / "cache")
    assert run.replies[2] == "I cannot compare these answers." and not run.failures
    sent = [entry.body for entry in server.chat_log() if entry.status == 200]
    assert (
        len(sent) == 4 and {b["temperature"] for b in sent} == {0.2} and {b["model"] for b in sent} == {"judge-test"}
    )
    by_answer = {b["messages"][1]["content"].split("[Assistant 2]\n", 1)[1].split("\n", 1)[0]: b for b in sent}
    assert by_answer["Black and brown."]["messages"] == JUDGE.messages(items[0], "Black and brown.")
    assert by_answer["A car by a parking meter."]["messages"][1]["content"].startswith(
        "[Context]\nA car parked by a parking meter in front of a building.\n"
    )
    scores = JUDGE.score(items, run.replies)
    # conv: (8, 6) and (8, 6); detail: (8, 2); complex: unparseable.
    assert scores["relative_score"] == pytest.approx((6 + 2 + 6) / 24 * 100)
    assert scores["relative_score_mean_of_ratios"] == pytest.approx((75 + 25 + 75) / 3)
    assert scores["relative_score/conv"] == pytest.approx(75.0) and scores["relative_score/detail"] == 25.0
    assert (scores["n_scored"], scores["judge_failures"]) == (3.0, 1.0)
    again = judge_answers(JUDGE, items, answers, config, tmp_path / "cache")
    assert again.replies == run.replies and again.report.cache_hits == 4 and again.report.requests == 0


@pytest.mark.slow
def test_evaluate_stage_judges_llava_bench_coco(server: FakeOpenAI, tmp_path: Path) -> None:
    write_coco_bench(tmp_path)
    judge = {"model": "judge-test", "base_url": server.url, "api_key_env": KEY_ENV}
    evaluate = {"benchmarks": ["llava_bench_coco"], "batch_size": 4, "judge": judge,
                "max_new_tokens_by_benchmark": {"llava_bench_coco": 4}}  # fmt: skip
    recipe = Recipe.model_validate(
        {"domain": "general", "stages": ["evaluate"], "model": {"source": "tiny"},
         "data": {"source": "shapes", "root": str(tmp_path)}, "evaluate": evaluate}
    )  # fmt: skip
    assert check_against_domain(recipe) == []
    layout = RunLayout(tmp_path / "run")
    evaluate_stage.run(StageContext(name="evaluate", recipe=recipe, domain=domain, layout=layout))
    out = layout.benchmark_dir("llava_bench_coco")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_items"] == 4 and metrics["judge"]["status"] == "scored"
    # The untrained model's answers never say 'wrong' or 'garbled': every reply is "8 6".
    assert metrics["metrics"]["relative_score"] == pytest.approx(75.0)
    assert metrics["metrics"]["relative_score/complex"] == pytest.approx(75.0)
    assert metrics["metrics"]["n_scored"] == 4.0 and "token_recall/conv" in metrics["metrics"]  # offline too
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert Path(predictions[0]["image"]).name == "COCO_val2014_000000441147.jpg"
    assert len((out / "judgements.jsonl").read_text().splitlines()) == 4
