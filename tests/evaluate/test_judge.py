"""The GPT-4-judged score, end to end: biomed's `llava_med_chat` answers judged through a real HTTP server on
127.0.0.1 that speaks the OpenAI API (with injected faults), from the evaluate stage and from `llava-adapt eval`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from llava_adapt.cli.errors import CommandGroup
from llava_adapt.cli.eval import register
from llava_adapt.data.records import VQAItem
from llava_adapt.domain import SourceContext
from llava_adapt.domains.biomed import domain
from llava_adapt.domains.biomed.chat import ChatEvalArgs, load
from llava_adapt.evaluate.config import JudgeConfig
from llava_adapt.evaluate.judge import JudgeError, judge_answers
from llava_adapt.recipe.loader import check_against_domain
from llava_adapt.recipe.schema import Recipe
from llava_adapt.run.layout import RunLayout
from llava_adapt.stages import evaluate as evaluate_stage
from llava_adapt.stages.context import StageContext
from tests.domains.biomed.chat_files import write_chat_eval
from tests.generate.fake_openai import FakeOpenAI
from tests.hub.conftest import run_template  # noqa: F401  (fixture)

KEY_ENV = "LLAVA_ADAPT_TEST_JUDGE_KEY"
KEY = "sk-judge-NEVER-WRITE-ME-9876543210"
BENCH = domain.benchmarks["llava_med_chat"]


def scoring_judge(body: dict) -> str:
    """Reference 8; the model's answer 6, or 4 when it says 'vague'; no scores for an answer saying 'garbled'."""
    content = body["messages"][-1]["content"]
    answer = content.split("[Assistant 2]\n", 1)[1]
    if "garbled" in answer:
        return "I cannot compare these answers."
    return ("8 4" if "vague" in answer else "8 6") + "\nAssistant 1 is more precise."


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, KEY)
    return KEY


@pytest.fixture
def server(key: str):
    with FakeOpenAI(responder=scoring_judge) as fake:
        yield fake


def _config(server: FakeOpenAI, **kw) -> JudgeConfig:
    return JudgeConfig(model="judge-test", base_url=server.url, api_key_env=KEY_ENV, **kw)


def _items(root: Path) -> list[VQAItem]:
    write_chat_eval(root)
    return list(load(ChatEvalArgs(), SourceContext(data_root=root, output_dir=root / "out")))


def _no_key_in(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


@pytest.mark.slow
def test_judge_answers_with_faults_then_from_cache(server: FakeOpenAI, tmp_path: Path) -> None:
    items = _items(tmp_path)
    answers = ["The conjunctiva.", "Something vague.", "garbled"]
    server.fault("429", retry_after=0.05)
    server.fault("500")
    server.fault("malformed")
    run = judge_answers(BENCH.judge, items, answers, _config(server, max_retries=3), tmp_path / "cache")
    assert run.replies[0].startswith("8 6") and run.replies[1].startswith("8 4")
    assert run.replies[2] == "I cannot compare these answers." and not run.failures
    assert run.report.requests == 6 and run.report.retries == 3
    sent = [entry.body for entry in server.chat_log() if entry.status == 200]
    assert {body["model"] for body in sent} == {"judge-test"} and {b["temperature"] for b in sent} == {0.0}
    organ = next(b["messages"][1]["content"] for b in sent if "The conjunctiva." in b["messages"][1]["content"])
    assert "Figure Caption:\nFig. 3: A cystic wall" in organ
    assert "[Assistant 1]\nThe organ in the image is the conjunctiva." in organ
    assert "[Question]\nWhat is the organ in the image?" in organ
    scores = BENCH.judge.score(items, run.replies)
    assert scores["relative_score"] == pytest.approx((75.0 + 50.0) / 2)  # mean of per-question ratios
    assert scores["relative_score_ratio_of_means"] == pytest.approx(5 / 8 * 100)
    assert scores["judge_failures"] == 1.0 and scores["n_scored"] == 2.0
    assert scores["relative_score/histology"] == pytest.approx(62.5)

    again = judge_answers(BENCH.judge, items, answers, _config(server), tmp_path / "cache")
    assert again.replies == run.replies
    assert again.report.requests == 0 and again.report.cache_hits == 3
    assert len(server.chat_log()) == 6  # nothing was asked twice
    _no_key_in(tmp_path)


@pytest.mark.slow
def test_a_request_that_keeps_failing_is_counted_not_fatal(server: FakeOpenAI, tmp_path: Path) -> None:
    items = _items(tmp_path)
    server.fault("503", match="Something vague.", times=5)
    run = judge_answers(BENCH.judge, items, ["a", "Something vague.", "c"], _config(server, max_retries=1),
                        tmp_path / "cache")  # fmt: skip
    assert run.replies[1] is None and run.failures == {"request failed after retries": 1}
    assert BENCH.judge.score(items, run.replies)["judge_failures"] == 1.0


def test_fatal_failures_stop_with_what_to_fix(server: FakeOpenAI, tmp_path: Path, monkeypatch) -> None:
    items = _items(tmp_path)
    server.fault("401")
    with pytest.raises(JudgeError, match=f"evaluate.judge.*{KEY_ENV}"):
        judge_answers(BENCH.judge, items[:1], ["a"], _config(server), tmp_path / "cache")
    monkeypatch.delenv(KEY_ENV)
    before = len(server.chat_log())
    with pytest.raises(JudgeError, match=f"environment variable {KEY_ENV} is not"):
        judge_answers(BENCH.judge, items[:1], ["a"], _config(server), tmp_path / "cache")
    assert len(server.chat_log()) == before


def _recipe(root: Path, judge: dict | None) -> Recipe:
    evaluate = {
        "benchmarks": ["llava_med_chat"],
        "batch_size": 4,
        "max_new_tokens_by_benchmark": {"llava_med_chat": 6},
    }
    if judge is not None:
        evaluate["judge"] = judge
    return Recipe.model_validate(
        {"domain": "biomed", "stages": ["evaluate"], "model": {"source": "tiny"},
         "data": {"source": "synthetic", "root": str(root)}, "evaluate": evaluate}
    )  # fmt: skip


@pytest.mark.slow
def test_evaluate_stage_judges_the_answers(server: FakeOpenAI, tmp_path: Path) -> None:
    write_chat_eval(tmp_path)
    recipe = _recipe(tmp_path, {"model": "judge-test", "base_url": server.url, "api_key_env": KEY_ENV})
    assert check_against_domain(recipe) == []
    layout = RunLayout(tmp_path / "run")
    ctx = StageContext(name="evaluate", recipe=recipe, domain=domain, layout=layout)
    evaluate_stage.run(ctx)
    out = layout.benchmark_dir("llava_med_chat")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["judge"]["status"] == "scored" and metrics["judge"]["model"] == "judge-test"
    assert metrics["metrics"]["relative_score"] == pytest.approx(75.0)  # the untrained model's answers: 6 vs 8
    assert metrics["metrics"]["n_scored"] == 3.0 and "open_recall" in metrics["metrics"]  # offline metrics too
    rows = [json.loads(line) for line in (out / "judgements.jsonl").read_text().splitlines()]
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["prediction"] for r in rows] == [p["prediction"] for p in predictions]
    assert all(r["reply"].startswith("8 6") for r in rows)
    assert ctx.info["judge"]["llava_med_chat/baseline"]["requests"] == 3
    assert len(server.chat_log()) == 3
    _no_key_in(tmp_path)


@pytest.mark.slow
def test_evaluate_stage_without_a_judge_says_so(tmp_path: Path) -> None:
    write_chat_eval(tmp_path)
    layout = RunLayout(tmp_path / "run")
    evaluate_stage.run(StageContext(name="evaluate", recipe=_recipe(tmp_path, None), domain=domain, layout=layout))
    metrics = json.loads((layout.benchmark_dir("llava_med_chat") / "metrics.json").read_text())
    assert metrics["judge"]["status"].startswith("not run: set evaluate.judge")
    assert "relative_score" not in metrics["metrics"] and "open_recall" in metrics["metrics"]


def test_recipe_checks_for_the_judge(tmp_path: Path) -> None:
    recipe = Recipe.model_validate(
        {"domain": "biomed", "data": {"source": "synthetic"},
         "evaluate": {"benchmarks": ["synthetic"], "judge": {"model": "gpt-4o"},
                      "max_new_tokens_by_benchmark": {"llava_med_chat": 512}}}
    )  # fmt: skip
    problems = dict(check_against_domain(recipe))
    assert "llava_med_chat" in problems["evaluate.judge"]
    assert "does not list" in problems["evaluate.max_new_tokens_by_benchmark.llava_med_chat"]


def _invoke(*args: object):
    app = typer.Typer(cls=CommandGroup)  # the root app's error handling
    register(app)
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.slow
def test_cli_eval_with_a_judge(server: FakeOpenAI, run_template: Path, tmp_path: Path) -> None:  # noqa: F811
    write_chat_eval(tmp_path)
    out = tmp_path / "out"
    common = ["eval", run_template, "--benchmark", "llava_med_chat", "--data-root", tmp_path, "--max-new-tokens", 4]
    result = _invoke(*common, "--out", out, "--judge", "judge-test", "--judge-base-url", server.url,
                     "--judge-api-key-env", KEY_ENV)  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "llava_med_chat" / "metrics.json").read_text())
    assert metrics["metrics"]["relative_score"] == pytest.approx(75.0)
    assert metrics["judge"]["requests"] == 3 and metrics["judge"]["model"] == "judge-test"
    assert len((out / "llava_med_chat" / "judgements.jsonl").read_text().splitlines()) == 3
    assert re.search(r"relative_score=75", result.stdout)
    _no_key_in(tmp_path)

    plain = _invoke(*common, "--out", tmp_path / "plain")
    assert plain.exit_code == 0, plain.output
    plain_metrics = json.loads((tmp_path / "plain" / "llava_med_chat" / "metrics.json").read_text())
    assert plain_metrics["judge"]["status"].startswith("not run")

    lonely = _invoke(*common, "--judge-base-url", server.url)
    assert lonely.exit_code == 2 and "--judge" in lonely.output


def test_recipe_run_reports_a_missing_judge_key_without_a_traceback(tmp_path: Path, monkeypatch) -> None:
    from llava_adapt.cli import app

    write_chat_eval(tmp_path)
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv("LLAVA_ADAPT_DEBUG", raising=False)
    result = CliRunner().invoke(
        app,
        ["recipe", "run", "biomed", "--preset", "tiny", "--run-dir", str(tmp_path / "run"), "stages=[evaluate]",
         f"data.root={tmp_path}", "evaluate.benchmarks=[llava_med_chat]",
         f"evaluate.judge={{model: gpt-4o, api_key_env: {KEY_ENV}}}"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert f"environment variable {KEY_ENV} is not" in result.output and "Traceback" not in result.output
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["stages"]["evaluate"]["status"] == "failed"
