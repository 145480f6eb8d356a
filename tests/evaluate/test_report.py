"""The run report: every figure it references exists, the tables say what the run recorded, nothing is unescaped."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from llava_adapt.cli.errors import CommandGroup
from llava_adapt.cli.eval import register
from llava_adapt.evaluate import plots
from llava_adapt.evaluate.metric_spec import MetricSpec, read_specs
from llava_adapt.evaluate.report import (
    MAX_LISTED_QUESTIONS,
    ReportError,
    chart_data,
    metric_columns,
    pick_samples,
    question_summary,
    write_report,
)
from tests.evaluate.report_run import build_report_run
from tests.hub.conftest import METRICS, run_dir, run_template  # noqa: F401  (fixtures)

# The shape of `trainer.state.log_history`, as align/instruct save it (transformers 5 / TRL 1.16).
LOG = [
    {"loss": 6.05, "grad_norm": 0.7, "learning_rate": 1e-3, "epoch": 0.3, "step": 25},
    {"loss": 5.82, "grad_norm": 0.4, "learning_rate": 5e-4, "epoch": 0.7, "step": 50},
    {"loss": 5.72, "grad_norm": 0.3, "learning_rate": 1e-6, "epoch": 1.0, "step": 75},
    {"train_runtime": 20.5, "train_loss": 5.86, "epoch": 1.0, "step": 75},
]
ROWS = [
    {"id": "q1", "question": "Is there a <script>fracture</script>?", "answer": "yes", "prediction": "yes",
     "answer_type": "closed", "correct": True, "image": "images/q1.png"},
    {"id": "q2", "question": "Which organ?", "answer": "lung", "prediction": "liver", "answer_type": "open"},
    {"id": "q3", "question": "Is it normal?", "answer": "no", "prediction": "yes", "answer_type": "closed",
     "correct": False},
]  # fmt: skip


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"] or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def _assert_images_resolve(page: _Page, root: Path) -> None:
    for src in page.images:
        if src.startswith("data:image/png;base64,"):
            base64.b64decode(src.split(",", 1)[1], validate=True)
            continue
        assert not Path(src).is_absolute() and ".." not in Path(src).parts, src
        with Image.open(root / src) as image:
            image.verify()


@pytest.fixture
def full_run(run_dir: Path) -> Path:  # noqa: F811
    """The publishing tests' run, plus what the trainer and the evaluate stage write."""
    (run_dir / "align").mkdir()
    (run_dir / "align" / "log_history.json").write_text(json.dumps(LOG))
    checkpoint = run_dir / "instruct" / "checkpoints" / "checkpoint-75"  # interrupted: no log_history.json
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": 75, "log_history": LOG[:2]}))
    bench = run_dir / "eval" / "vqa_rad"
    (bench / "images").mkdir()
    Image.new("RGB", (300, 200), "gray").save(bench / "images" / "q1.png")
    Image.new("RGB", (64, 64), "blue").save(bench / "images" / "q3.png")  # found by id: the row has no image key
    (bench / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    baseline = [{**r, "prediction": "maybe"} for r in ROWS]
    (bench / "baseline_predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in baseline))
    return run_dir


@pytest.mark.slow
def test_report_renders_offline(full_run: Path) -> None:
    path = write_report(full_run, gallery_size=2)
    assert path == full_run / "report.html"
    page = _parse(path)
    _assert_images_resolve(page, full_run)
    assert "script" not in page.tags  # the question's markup is text, not a tag
    text = " ".join(" ".join(page.text).split())
    assert "Is there a <script>fracture</script>?" in text
    sources = set(page.images)
    assert {"report/align_curves.png", "report/instruct_curves.png", "report/vqa_rad_metrics.png"} <= sources
    # metrics table: baseline and trained side by side, with the change
    vqa_rad = METRICS["vqa_rad"]
    before, after = vqa_rad["baseline"]["closed_accuracy"], vqa_rad["metrics"]["closed_accuracy"]
    assert "baseline (untrained)" in text and f"closed_accuracy {before:.4f} {after:.4f} {after - before:+.4f}" in text
    assert "slake" in text and all(name in text for name in metric_columns(METRICS["slake"])["trained"])
    # stage table from the manifest, with skip reasons
    assert "answer truncated: 1" in text and "corrupt or unreadable image: 2" in text
    # gallery: the wrong answer first, its image found by id; the baseline's answer shown
    gallery = sorted(s for s in sources if "/gallery/" in s)
    assert gallery == ["report/gallery/vqa_rad/000.png", "report/gallery/vqa_rad/001.png"]
    assert text.index("q3") < text.index("q1")
    assert "baseline: maybe" in text
    with Image.open(full_run / "report/gallery/vqa_rad/001.png") as thumb:
        assert max(thumb.size) <= 192


@pytest.mark.slow
def test_report_regenerates_and_handles_a_bare_run(full_run: Path, tmp_path: Path) -> None:
    write_report(full_run)
    (full_run / "eval" / "vqa_rad" / "predictions.jsonl").unlink()
    result = CliRunner().invoke(_app(), ["report", str(full_run)])
    assert result.exit_code == 0, result.output
    page = _parse(full_run / "report.html")
    _assert_images_resolve(page, full_run)
    assert not (full_run / "report" / "gallery" / "vqa_rad").exists()  # the old thumbnails went with the old report

    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "manifest.json").write_text(json.dumps({"stages": {}}))
    text = " ".join(_parse(write_report(bare)).text)
    assert "No training log yet" in text and "No evaluation results yet" in text
    assert "text pretraining" not in text and "Before align" not in text  # no tiny model recorded, no line

    with pytest.raises(ReportError, match="not a llava-adapt run directory"):
        write_report(tmp_path / "nothing")
    (bare / "eval" / "x").mkdir(parents=True)
    (bare / "eval" / "x" / "metrics.json").write_text("{oops")
    with pytest.raises(ReportError, match="not valid JSON"):
        write_report(bare)


def _app() -> typer.Typer:
    app = typer.Typer(cls=CommandGroup)  # the root app's error handling
    register(app)
    return app


def test_report_help_has_an_example() -> None:
    assert "Example: llava-adapt report" in CliRunner().invoke(_app(), ["report", "--help"]).output


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A realistic finished tiny biomed run (`report_run`), its report written."""
    run = build_report_run(tmp_path_factory.mktemp("report") / "run")
    write_report(run)
    return run


def _text(run: Path) -> str:
    return " ".join(" ".join(_parse(run / "report.html").text).split())


@pytest.mark.slow
def test_the_tables_say_what_each_metric_and_figure_is(tiny_run: Path) -> None:
    text = _text(tiny_run)
    # what was asked: per answer type and per question, not one prompt for all
    assert "54 questions (30 closed, 24 open)" in text and "Prompt:" not in text
    assert "Is there a lesion in this image? 12" in text
    assert "Which side of the image is the lesion on, left or right? 6" in text
    # counts as integers, every metric's kind, no change for a count
    assert "n_closed 30 30 30 count" in text and "151.0000" not in text and "30.0000" not in text
    assert "closed_accuracy 0.0000 0.9000 0.9333 +0.9333 score (primary)" in text
    assert "closed_no_answer 1.0000 0.0000 0.0000 -1.0000 diagnostic, lower is better" in text
    # one source of stage times (the manifest's), the trainer's loop time named as such
    assert text.count("8 min 31 s") == 2  # the instruct caption and the stages table
    assert "Stage time 8 min 31 s: the whole instruct stage" in text
    assert "instruct: 250 steps, mean training loss" in text and "training loop 1 min 8 s" in text
    assert "stage 2 only (no align): 250 steps" in text and "training loop 1 min 6 s" in text
    # the tiny model's text pretraining, before align
    assert "Before align, the tiny language model was trained 200 steps on the run's own text (3,233 " in text
    assert "next-token loss 6.28 at the first step, 0.32 at the last" in text


def test_the_chart_draws_declared_scores_with_their_baselines(tiny_run: Path) -> None:
    data = json.loads((tiny_run / "eval" / "synthetic" / "metrics.json").read_text())
    specs, primary = read_specs(data)
    scores, references = chart_data(metric_columns(data), specs, primary)
    assert list(scores) == ["baseline (untrained)", "stage 2 only (no align)", "trained"]
    drawn = list(scores["trained"])
    assert drawn[0] == "closed_accuracy" and "open_recall" in drawn
    assert not {"n_closed", "n_open", "closed_no_answer"} & set(drawn)  # counts and diagnostics are not scores
    assert references == {}
    chance = {"accuracy": MetricSpec(primary=True), "chance": MetricSpec(kind="baseline", baseline_for="accuracy"),
              "num_closed": MetricSpec(kind="count")}  # fmt: skip
    columns = {"baseline (untrained)": {"accuracy": 0.0, "chance": 0.31, "num_closed": 48.0},
               "trained": {"accuracy": 0.9, "chance": 0.31, "num_closed": 48.0}}  # fmt: skip
    scores, references = chart_data(columns, chance, "accuracy")
    assert scores == {"baseline (untrained)": {"accuracy": 0.0}, "trained": {"accuracy": 0.9}}
    assert references == {"accuracy": {"chance": 0.31}}
    # without declarations (an older metrics.json) every metric but the counts is drawn
    scores, _ = chart_data(columns, {}, None)
    assert scores["trained"] == {"accuracy": 0.9, "chance": 0.31}


def _drawn(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    figures: list[Any] = []
    real = plots.plt.close
    monkeypatch.setattr(plots.plt, "close", lambda fig: (figures.append(fig), real(fig)))
    return figures


def test_zero_scores_and_chance_are_visible_and_the_figure_fits_the_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    figures = _drawn(monkeypatch)
    columns = {"baseline (untrained)": {"accuracy": 0.0, "f1": 0.25}, "trained": {"accuracy": 0.9}}
    assert plots.plot_metrics(columns, "bench", tmp_path / "m.png", {"accuracy": {"chance": 0.31}})
    ax = figures[0].axes[0]
    labels = [t.get_text() for t in ax.texts]
    assert labels.count("0") == 1 and "0.9" in labels and "0.25" in labels and "chance 0.31" in labels
    zero_marks = [line for line in ax.lines if list(line.get_xdata()) == [0]]
    assert len(zero_marks) == 1  # the zero bar's tick
    assert len(ax.patches) == 3  # the trained model has no f1: no bar, rather than a bar at 0
    with Image.open(tmp_path / "m.png") as image:
        assert image.width <= 1100  # the page's column
    # percentages are drawn on a 0-100 axis, not stretched to the largest score
    assert plots.plot_metrics({"trained": {"accuracy": 35.4}}, "sqa", tmp_path / "p.png", xlabel="score (%)")
    assert figures[1].axes[0].get_xlim()[1] == pytest.approx(112)
    assert figures[1].axes[0].get_xlabel() == "score (%)"


def test_the_instruct_curves_include_the_stage_2_only_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    figures = _drawn(monkeypatch)
    histories = {"instruct": LOG, "stage 2 only (no align)": LOG[:2], "empty": []}
    assert plots.plot_training(histories, "instruct", tmp_path / "c.png")
    loss_ax = figures[0].axes[0]
    assert [line.get_label() for line in loss_ax.lines] == ["instruct", "stage 2 only (no align)"]
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == ["instruct", "stage 2 only (no align)"]
    assert not plots.plot_training({"instruct": []}, "instruct", tmp_path / "none.png")


def test_the_gallery_shows_distinct_images_and_questions_wrong_ones_first(tiny_run: Path) -> None:
    rows = [json.loads(line) for line in (tiny_run / "eval" / "synthetic" / "predictions.jsonl").open()]
    chosen = pick_samples(rows, 8)
    assert len({r["image"] for r in chosen}) == 8
    assert len({r["question"] for r in chosen}) == 5  # every question kind of the benchmark
    wrong = [r.get("correct") is False for r in chosen]
    assert wrong == sorted(wrong, reverse=True) and any(wrong)
    assert pick_samples(rows[:4], 8) == rows[:4]  # one image, four questions: all of them, nothing invented
    page = (tiny_run / "report.html").read_text()
    assert page.count('<div class="card">') == 8 and "overflow-wrap: anywhere" in page


@pytest.mark.slow
def test_the_report_imports_neither_torch_nor_trl() -> None:
    code = "import sys, llava_adapt.evaluate.report; print(sorted({'torch', 'trl'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_header_shows_the_prompt_only_where_the_template_adds_to_the_question() -> None:
    rows = [{"question": "Which color is the square?", "answer_type": "closed"},
            {"question": "Which word names a color?", "answer_type": "closed"}]  # fmt: skip
    wrapped = "Which color is the square?\nOptions: (A) red (B) blue\nAnswer with the option's letter."
    summary = question_summary(rows, wrapped)
    assert summary == {"types": {"closed": 2}, "distinct": 2, "listed": [(rows[0]["question"], 1),
                       (rows[1]["question"], 1)], "prompt": wrapped}  # fmt: skip
    assert question_summary(rows, "Which color is the square?")["prompt"] is None  # the question itself
    assert question_summary(rows, "Is there a fracture?")["prompt"] is None  # not this benchmark's first question
    many = [{"question": f"q{n}"} for n in range(MAX_LISTED_QUESTIONS + 1)]
    assert question_summary(many, None) == {"types": {}, "distinct": len(many), "listed": [], "prompt": None}
