"""LLaVA + GPT-4 ensembles on ScienceQA (`evaluate.ensemble`), end to end: the evaluate stage asks a real HTTP server
on 127.0.0.1 that speaks the OpenAI API through the judge's client, and the ensemble's per-category accuracies land
next to the model's own in `metrics.json`, the report and the model card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from llava_adapt.data.records import VQAItem
from llava_adapt.domain import SourceContext
from llava_adapt.domains.scienceqa import domain
from llava_adapt.domains.scienceqa.metrics import scienceqa_metrics
from llava_adapt.domains.scienceqa.parsing import FAILED, parse_answer
from llava_adapt.evaluate.metric_spec import benchmark_specs, specs_record
from llava_adapt.evaluate.report import write_report
from llava_adapt.hub.card import build_model_card
from llava_adapt.hub.run_info import load_run
from llava_adapt.recipe.loader import RecipeError, check_against_domain, load_recipe
from llava_adapt.recipe.schema import Recipe
from llava_adapt.run.layout import RunLayout
from llava_adapt.stages import evaluate as evaluate_stage
from llava_adapt.stages.context import StageContext
from tests.generate.fake_openai import FakeOpenAI
from tests.hub.conftest import run_dir, run_template, write_recipe  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow

KEY_ENV = "LLAVA_ADAPT_TEST_ENSEMBLE_KEY"
KEY = "sk-ensemble-NEVER-WRITE-ME-24680"
N_TEST = 16
WORD_QUESTION = "Which kind of word is"  # the synthetic set's language-science questions


def teacher(body: dict) -> str:
    """The judge model: re-queries answer B; first answers are unreadable for the colour-word questions, else A."""
    content = body["messages"][-1]["content"]
    if "Two assistants answered" in content:
        return "Both answers considered. The answer is B."
    if content.startswith(WORD_QUESTION):
        return "I am not sure which option it is."
    return "Let me think. The answer is A."


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    with FakeOpenAI(responder=teacher) as fake:
        yield fake


def _recipe(root: Path, ensemble: str | None, judge: dict | None) -> Recipe:
    evaluate = {"benchmarks": ["synthetic"], "args": {"synthetic": {"n_train": 8, "n_test": N_TEST}},
                "batch_size": 16, "max_new_tokens": 3, "ensemble": ensemble, "judge": judge}  # fmt: skip
    return Recipe.model_validate(
        {"domain": "scienceqa", "stages": ["evaluate"], "model": {"source": "tiny"},
         "data": {"source": "synthetic", "root": str(root)}, "evaluate": evaluate}
    )  # fmt: skip


def _evaluate(recipe: Recipe, root: Path) -> tuple[StageContext, Path]:
    """Run the evaluate stage over the run directory `root`; return its context and the benchmark's output folder."""
    ctx = StageContext(name="evaluate", recipe=recipe, domain=domain, layout=RunLayout(root))
    evaluate_stage.run(ctx)
    return ctx, ctx.layout.benchmark_dir("synthetic")


def _items(tmp_path: Path) -> list[VQAItem]:
    bench = domain.benchmarks["synthetic"]
    ctx = SourceContext(data_root=tmp_path, output_dir=tmp_path / "items")
    return list(bench.load(bench.args(n_train=8, n_test=N_TEST), ctx))


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _expected(items: list[VQAItem], answers: list[str], kind: str) -> list[str]:
    """LLaVA's rules applied by hand to the teacher above."""
    out = []
    for item, answer in zip(items, answers, strict=True):
        ours = parse_answer(answer.strip())
        theirs = FAILED if item.question.startswith(WORD_QUESTION) else "A"
        complement = theirs if theirs != FAILED else ours  # GPT-4's, else LLaVA's
        requery = ours if ours == theirs else "B"  # they agree, else the re-query's answer
        final = complement if kind == "complement" else requery
        out.append(final if final in "ABCDE"[: len(item.choices)] else FAILED)
    return out


@pytest.mark.parametrize("kind", ["complement", "requery"])
def test_evaluate_stage_runs_the_ensemble(server: FakeOpenAI, tmp_path: Path, kind: str) -> None:
    recipe = _recipe(tmp_path, kind, {"model": "judge-test", "base_url": server.url, "api_key_env": KEY_ENV})
    assert check_against_domain(recipe) == []
    ctx, out = _evaluate(recipe, tmp_path / "run")
    metrics = json.loads((out / "metrics.json").read_text())
    items = _items(tmp_path)
    answers = [row["prediction"] for row in _rows(out / "predictions.jsonl")]
    expected = _expected(items, answers, kind)
    assert [row["ensemble"] for row in _rows(out / "ensemble.jsonl")] == expected
    ensemble, own = metrics["ensemble"], metrics["metrics"]
    assert ensemble["accuracy"] == pytest.approx(scienceqa_metrics(items, expected)["accuracy"])
    categories = {"NAT", "SOC", "LAN", "TXT", "IMG", "NO", "G1-6", "G7-12"}
    assert categories <= set(own) and categories <= set(ensemble)  # per category, next to the model's own
    assert own["accuracy"] == pytest.approx(scienceqa_metrics(items, answers)["accuracy"])
    word_questions = sum(item.question.startswith(WORD_QUESTION) for item in items)
    assert 0 < word_questions < N_TEST and ensemble["n_judge_no_answer"] == word_questions

    chat = server.chat_log()
    first = [e for e in chat if "Think step by step" in e.last_user]
    questions = {item.question for item in items}  # problems of the same template share their text: asked once
    assert len(first) == len(questions) and {e.body["model"] for e in chat} == {"judge-test"}
    asked = sorted(e.last_user.split("\n\nThink step by step")[0] for e in first)  # sent concurrently
    assert asked == sorted(questions)
    info = metrics["ensemble_info"]
    assert info["kind"] == kind and info["model"] == "judge-test"
    if kind == "requery":
        pairs = [(i.question, a) for i, a in zip(items, answers, strict=True)
                 if parse_answer(a.strip()) != (FAILED if i.question.startswith(WORD_QUESTION) else "A")]  # fmt: skip
        disagree, requeried = len(pairs), len(set(pairs))  # a request sent twice is answered from the cache
        assert ensemble["n_requeried"] == disagree > 0 and len(chat) - len(questions) == requeried
        assert [r["requests"] for r in info["rounds"]] == [len(questions), requeried]
    else:
        assert len(chat) == len(questions) and "n_requeried" not in ensemble
    assert ctx.info["ensemble"]["synthetic"]["kind"] == kind
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path

    _evaluate(recipe, tmp_path / "run")  # the replies are cached: nothing is asked twice
    assert len(server.chat_log()) == len(chat)


def test_ensemble_needs_the_judge_client_and_an_offering_benchmark(tmp_path: Path) -> None:
    with pytest.raises(RecipeError) as caught:
        load_recipe("scienceqa", preset="tiny", overrides=["evaluate.ensemble=requery"])
    assert "set evaluate.judge" in dict(caught.value.problems)["evaluate.ensemble"]
    unknown = _recipe(tmp_path, "majority", {"model": "gpt-4o"})
    assert dict(check_against_domain(unknown))["evaluate.ensemble"] == (
        "no benchmark offers the ensemble 'majority' (the evaluated benchmarks offer synthetic: complement, requery)"
    )
    biomed = Recipe.model_validate(
        {"domain": "biomed", "data": {"source": "synthetic"},
         "evaluate": {"benchmarks": ["synthetic"], "ensemble": "complement", "judge": {"model": "gpt-4o"}}}
    )  # fmt: skip
    assert "none of evaluate.benchmarks offers an ensemble" in dict(check_against_domain(biomed))["evaluate.ensemble"]


def test_report_and_card_show_the_ensemble_next_to_the_model(run_dir: Path) -> None:  # noqa: F811
    metrics = {"benchmark": "scienceqa", "model": "instruct", "num_items": 40,
               "metrics": {"accuracy": 62.5, "NAT": 60.0, "n_NAT": 20},
               "ensemble": {"accuracy": 75.0, "NAT": 70.0, "n_NAT": 20, "n_requeried": 6},
               "ensemble_info": {"kind": "requery", "model": "gpt-4o", "rounds": []}}  # fmt: skip
    bench = domain.benchmarks["scienceqa"]
    metrics.update(specs_record(benchmark_specs(bench), metrics["metrics"], metrics["ensemble"]))
    (run_dir / "eval" / "scienceqa").mkdir()
    (run_dir / "eval" / "scienceqa" / "metrics.json").write_text(json.dumps(metrics))
    write_recipe(run_dir, evaluate={"benchmarks": ["vqa_rad", "slake"], "ensemble": "requery",
                                    "judge": {"model": "gpt-4o"}})  # fmt: skip
    page = write_report(run_dir).read_text()
    assert "<th>trained</th><th>ensemble with the judge model</th>" in page
    assert "ensemble with the judge model: requery with gpt-4o" in page
    text = ModelCard(str(build_model_card(load_run(run_dir), "someone/sqa", "adapter"))).text
    assert "| this model | before training | ensemble with the judge model |" in text
    assert "| scienceqa | NAT | score (%) | 60.00 | – | 70.00 |" in text
    assert "| scienceqa | n_requeried | count | – | – | 6 |" in text
    assert "`evaluate.ensemble: requery`" in text and "`gpt-4o`" in text
