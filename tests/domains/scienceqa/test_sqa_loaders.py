"""Reading ScienceQA in its three layouts, and what bad input does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from llava_adapt.data.records import CaptionRecord, Skip, VQAItem
from llava_adapt.domain import SourceContext
from llava_adapt.domains.scienceqa import domain
from llava_adapt.domains.scienceqa.images import BLANK_COLOUR, BLANK_IMAGE
from llava_adapt.domains.scienceqa.layouts import LayoutError
from llava_adapt.domains.scienceqa.problems import ProblemError
from llava_adapt.domains.scienceqa.render import render_input, render_output
from llava_adapt.domains.scienceqa.synthetic import COLOURS, build_synthetic_scienceqa


@pytest.fixture
def ctx(tmp_path: Path) -> SourceContext:
    (tmp_path / "out").mkdir()
    return SourceContext(data_root=tmp_path / "root", output_dir=tmp_path / "out")


@pytest.fixture
def sqa(ctx: SourceContext) -> Path:
    return build_synthetic_scienceqa(ctx.data_root / "scienceqa", n_train=8, n_val=4, n_test=8, seed=1)


def _bench(ctx: SourceContext, name: str = "scienceqa", **args) -> tuple[list[VQAItem], list[Skip]]:
    bench = domain.benchmarks[name]
    out = list(bench.load(bench.args.model_validate(args), ctx))
    return [i for i in out if isinstance(i, VQAItem)], [s for s in out if isinstance(s, Skip)]


def _source(ctx: SourceContext, name: str = "problems", **args) -> tuple[list[CaptionRecord], list[Skip]]:
    source = domain.sources[name]
    out = list(source.load(source.args.model_validate(args), ctx))
    return [r for r in out if isinstance(r, CaptionRecord)], [s for s in out if isinstance(s, Skip)]


def _edit_problems(folder: Path, change) -> None:
    problems = json.loads((folder / "problems.json").read_text())
    change(problems)
    (folder / "problems.json").write_text(json.dumps(problems))


def test_lupantech_benchmark_items(ctx: SourceContext, sqa: Path) -> None:
    problems = json.loads((sqa / "problems.json").read_text())
    test_pids = json.loads((sqa / "pid_splits.json").read_text())["test"]
    items, skips = _bench(ctx, path="scienceqa")
    assert [i.id for i in items] == test_pids and not skips  # pid_splits order, text-only problems kept
    for item in items:
        p = problems[item.id]
        assert item.question == render_input(p["question"], p["hint"], p["choices"])
        assert (item.choices, item.answer, item.answer_type) == (p["choices"], "ABCDE"[p["answer"]], "closed")
        assert item.meta["has_image"] == bool(p["image"]) and item.meta["has_hint"] == bool(p["hint"])
        if p["image"]:
            assert item.image == f"scienceqa/images/test/{item.id}/image.png"
            assert (ctx.data_root / item.image).is_file()
        else:
            assert item.image == BLANK_IMAGE
            with Image.open(ctx.output_dir / BLANK_IMAGE) as im:
                assert im.getpixel((0, 0)) == BLANK_COLOUR


def test_image_only_and_limit(ctx: SourceContext, sqa: Path) -> None:
    items, skips = _bench(ctx, path="scienceqa", image_only=True)
    assert items and all(i.meta["has_image"] for i in items)
    assert len(items) + len(skips) == 8 and {s.reason for s in skips} == {"no image"}
    items, _ = _bench(ctx, path="scienceqa", limit=3)
    assert len(items) == 3


def test_parquet_layout_reads_the_same_problems(ctx: SourceContext, sqa: Path) -> None:
    build_synthetic_scienceqa(ctx.data_root / "hf", n_train=8, n_val=4, n_test=8, seed=1, layout="parquet")
    lupantech, _ = _bench(ctx, path="scienceqa")
    parquet, skips = _bench(ctx, path="hf")
    assert not skips and [i.id for i in parquet] == [f"test_{n:05d}" for n in range(8)]
    for a, b in zip(lupantech, parquet, strict=True):
        assert (a.question, a.choices, a.answer) == (b.question, b.choices, b.answer)
        assert {k: v for k, v in a.meta.items() if k != "pid"} == {k: v for k, v in b.meta.items() if k != "pid"}
        if a.meta["has_image"]:  # embedded bytes written out under output_dir, same pixels
            assert b.image == f"scienceqa/test/{b.id}.png"
            with Image.open(ctx.data_root / a.image) as x, Image.open(ctx.output_dir / b.image) as y:
                assert x.tobytes() == y.tobytes()
    val, _ = _bench(ctx, path="hf", split="val")  # lupantech name for HF's "validation"
    assert len(val) == 4 and val[0].id == "val_00000"


def test_llava_converted_json(ctx: SourceContext, sqa: Path) -> None:
    problems = json.loads((sqa / "problems.json").read_text())
    rows = []
    for pid in json.loads((sqa / "pid_splits.json").read_text())["test"]:
        p = problems[pid]
        human = render_input(p["question"], p["hint"], p["choices"])
        row = {"id": pid, "conversations": [{"from": "human", "value": human}, {"from": "gpt", "value": ""}]}
        row["conversations"][1]["value"] = render_output(p["lecture"], p["solution"], p["answer"], "LEA")
        if p["image"]:
            row["image"] = f"{pid}/image.png"
            row["conversations"][0]["value"] += "\n<image>"
        rows.append(row)
    (sqa / "llava_test_QCM-LEA.json").write_text(json.dumps(rows))
    direct, _ = _bench(ctx, path="scienceqa")
    converted, skips = _bench(ctx, path="scienceqa/llava_test_QCM-LEA.json")
    assert not skips
    assert [(i.id, i.image, i.question, i.choices, i.answer, i.meta) for i in converted] == [
        (i.id, i.image, i.question, i.choices, i.answer, i.meta) for i in direct
    ]
    (sqa / "problems.json").rename(sqa / "elsewhere.json")  # without problems.json: no categories, still scorable
    bare, _ = _bench(ctx, path="scienceqa/llava_test_QCM-LEA.json")
    assert "subject" not in bare[0].meta
    assert domain.benchmarks["scienceqa"].metrics(bare, [i.answer for i in bare])["accuracy"] == 100.0


def test_llava_converted_gold_is_problems_json_else_the_last_the_answer_is(ctx: SourceContext, sqa: Path) -> None:
    problems = json.loads((sqa / "problems.json").read_text())
    pids = json.loads((sqa / "pid_splits.json").read_text())["test"]
    first = next(pid for pid in pids if len(problems[pid]["choices"]) >= 3)  # "C" must be one of its options
    three = [first] + [pid for pid in pids if pid != first][:5]
    turns = [
        "B. Franklin flew a kite. The answer is C.",  # the model-answer parser would read B
        "The answer is A. Wait: the answer is B? The answer is B.",  # the last one counts
        "LECTURE: colours.\nANSWER: B.",  # LLaVA's LEPA output
        "A",
        "I cannot tell.",  # no gold: skipped and counted, the run goes on
        "The answer is E.",  # not one of the options
    ]
    rows = []
    for pid, turn in zip(three, turns, strict=True):
        human = render_input(problems[pid]["question"], problems[pid]["hint"], problems[pid]["choices"])
        rows.append({"id": pid, "conversations": [{"from": "human", "value": human}, {"from": "gpt", "value": turn}]})
    (sqa / "llava_test_QCM-LEA.json").write_text(json.dumps(rows))
    path = "scienceqa/llava_test_QCM-LEA.json"
    beside, skips = _bench(ctx, path=path)  # problems.json beside the file: its answers, as LLaVA scores
    assert [i.answer for i in beside] == ["ABCDE"[problems[pid]["answer"]] for pid in three] and not skips
    (sqa / "problems.json").rename(sqa / "elsewhere.json")
    alone, skips = _bench(ctx, path=path)
    assert [(i.id, i.answer) for i in alone] == [(three[0], "C"), (three[1], "B"), (three[2], "B"), (three[3], "A")]
    assert [(s.id, s.reason) for s in skips] == [
        (three[4], "no gold answer in the assistant turn"),
        (three[5], "gold answer is not an option"),
    ]


def test_source_records_carry_the_problem(ctx: SourceContext, sqa: Path) -> None:
    records, skips = _source(ctx, path="scienceqa")
    problems = json.loads((sqa / "problems.json").read_text())
    assert records and {s.reason for s in skips} == {"no image"}
    for r in records:
        p = problems[r.id]
        assert r.caption == "\n".join(x for x in (p["question"], p["hint"]) if x)
        assert json.loads(r.labels["choices"]) == p["choices"] and r.labels["answer"] == "ABCDE"[p["answer"]]
        assert set(r.context) <= set(domain.context_fields)
    everything, skips = _source(ctx, path="scienceqa", no_image="blank", caption_fields=["solution"])
    assert len(everything) == 8 and not skips
    assert everything[0].caption == problems[everything[0].id]["solution"]


def test_synthetic_source_and_benchmark_are_deterministic_and_disjoint(tmp_path: Path) -> None:
    out = tmp_path / "images"
    out.mkdir()
    ctx = SourceContext(data_root=tmp_path, output_dir=out, seed=5)
    train, _ = _source(ctx, "synthetic", n_train=12, n_test=8)
    test, _ = _bench(ctx, "synthetic", n_train=12, n_test=8)
    assert len(train) == 12 and len(test) == 8
    assert not {r.id for r in train} & {i.id for i in test}
    assert all((out / r.image).is_file() for r in train)  # written under output_dir, paths relative to it
    again, _ = _bench(ctx, "synthetic", n_train=12, n_test=8)
    assert again == test


def test_synthetic_images_show_the_answer(tmp_path: Path) -> None:
    root = build_synthetic_scienceqa(tmp_path, n_train=12, n_val=0, n_test=0, seed=2)
    problems = json.loads((root / "problems.json").read_text())
    assert json.loads((root / "problems.json").read_text()) == json.loads(
        (
            build_synthetic_scienceqa(tmp_path / "again", n_train=12, n_val=0, n_test=0, seed=2) / "problems.json"
        ).read_text()
    )
    images = 0
    for pid, p in problems.items():
        if p["image"]:
            images += 1
            with Image.open(root / "images" / "train" / pid / "image.png") as im:
                pixels = np.asarray(im.convert("RGB"), dtype=int)
            near = {c: int((np.abs(pixels - rgb).max(axis=-1) <= 21).sum()) for c, rgb in COLOURS.items()}
            answer = p["choices"][p["answer"]]
            assert near[answer] >= 24 * 24, (pid, near)  # the square or the highlighted state, in the answer's colour
            assert all(n == 0 for c, n in near.items() if c != answer), (pid, near)
    assert images == 6


def test_synthetic_test_split_does_not_depend_on_the_train_size(tmp_path: Path) -> None:
    """Each split has its own random stream: a recipe that trains on more problems is scored on the same test set."""

    def test_split(root: Path) -> tuple[list[dict], list[bytes]]:
        problems = json.loads((root / "problems.json").read_text())
        pids = json.loads((root / "pid_splits.json").read_text())["test"]
        folder = root / "images" / "test"
        images = [(folder / pid / "image.png").read_bytes() for pid in pids if problems[pid]["image"]]
        return [problems[pid] for pid in pids], images

    small = test_split(build_synthetic_scienceqa(tmp_path / "small", n_train=8, n_val=2, n_test=12, seed=3))
    large = test_split(build_synthetic_scienceqa(tmp_path / "large", n_train=40, n_val=0, n_test=12, seed=3))
    assert small == large and small[1]
    other = test_split(build_synthetic_scienceqa(tmp_path / "other", n_train=8, n_val=2, n_test=12, seed=4))
    assert other[0] != small[0]


# ---- bad input ---------------------------------------------------------------------------------------------------


def test_malformed_problems_json_names_the_file(ctx: SourceContext, sqa: Path) -> None:
    (sqa / "problems.json").write_text('{"1": {"question": ')
    with pytest.raises(LayoutError, match=r"problems\.json: not valid JSON"):
        _bench(ctx, path="scienceqa")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p["13"].pop("choices"), r"problem '13': missing key 'choices'"),
        (lambda p: p["13"].update(answer=9), r"problem '13': key 'answer' is 9"),
        (lambda p: p["13"].update(answer="B"), r"problem '13': key 'answer' must be int"),
        (lambda p: p["13"].update(choices=["only one"]), r"problem '13': key 'choices' has 1 entries"),
        (lambda p: p.pop("14"), r"problem id '14' \(split 'test'\) is not in"),
    ],
)
def test_malformed_problem_names_problem_and_key(ctx: SourceContext, sqa: Path, change, message: str) -> None:
    _edit_problems(sqa, change)
    with pytest.raises((ProblemError, LayoutError), match=message):
        _bench(ctx, path="scienceqa")


def test_unknown_split_lists_the_known_ones(ctx: SourceContext, sqa: Path) -> None:
    with pytest.raises(LayoutError, match=r"no split 'dev' \(splits: test, train, val\)"):
        _bench(ctx, path="scienceqa", split="dev")


def test_missing_image_is_a_counted_skip(ctx: SourceContext, sqa: Path) -> None:
    items, _ = _bench(ctx, path="scienceqa", image_only=True)
    (ctx.data_root / items[0].image).unlink()
    after, skips = _bench(ctx, path="scienceqa", image_only=True)
    assert len(after) == len(items) - 1
    assert Skip(id=items[0].id, reason="image file missing") in skips


def test_image_paths_escaping_the_data_root_are_rejected(ctx: SourceContext, sqa: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.png"
    Image.new("RGB", (4, 4)).save(outside)
    _edit_problems(sqa, lambda p: p["13"].update(image="../../../../secret.png"))
    items, skips = _bench(ctx, path="scienceqa")
    assert "13" not in {i.id for i in items}
    assert Skip(id="13", reason="image path escapes the data root") in skips
    with pytest.raises(LayoutError, match="escapes the data root"):
        _bench(ctx, path="../")


def test_corrupt_embedded_image_is_a_counted_skip(ctx: SourceContext) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = ctx.data_root / "hf"
    folder.mkdir(parents=True)
    rows = [
        {"image": {"bytes": b"not a png", "path": "x.png"}, "question": "Q?", "choices": ["a", "b"], "answer": 0},
        {"image": None, "question": "Q2?", "choices": ["a", "b"], "answer": 1},
    ]
    pq.write_table(pa.Table.from_pylist(rows), folder / "test-00000-of-00001.parquet")
    items, skips = _bench(ctx, path="hf")
    assert skips == [Skip(id="test_00000", reason="corrupt or unreadable image")]
    assert [i.id for i in items] == ["test_00001"]
    pq.write_table(pa.Table.from_pylist([{"question": "Q?"}]), folder / "test-00000-of-00001.parquet")
    with pytest.raises(LayoutError, match=r"missing column\(s\) answer, choices"):
        _bench(ctx, path="hf")


def test_a_folder_that_is_no_scienceqa_says_what_it_expected(ctx: SourceContext) -> None:
    (ctx.data_root / "empty").mkdir(parents=True)
    with pytest.raises(LayoutError, match=r"problems\.json \+ pid_splits\.json"):
        _bench(ctx, path="empty")
    with pytest.raises(LayoutError, match="does not exist"):
        _bench(ctx, path="nowhere")


def test_malformed_llava_json_names_the_entry(ctx: SourceContext, sqa: Path) -> None:
    (sqa / "llava_test_x.json").write_text(json.dumps([{"id": "13", "conversations": [{"value": "no options"}]}]))
    with pytest.raises(LayoutError, match=r"entry 0: needs 'id' and two 'conversations'"):
        _bench(ctx, path="scienceqa/llava_test_x.json")


def test_records_pass_the_prepare_stage_image_checks(ctx: SourceContext, sqa: Path) -> None:
    from llava_adapt.stages.prepare import image_problem, resolve_image

    build_synthetic_scienceqa(ctx.data_root / "hf", n_train=8, n_val=4, n_test=8, seed=1, layout="parquet")
    for path in ("scienceqa", "hf"):
        records, _ = _source(ctx, path=path, no_image="blank")
        assert len(records) == 8
        for r in records:
            stored, reason = resolve_image(r.image, ctx.output_dir, ctx.data_root)
            assert reason is None, (path, r.image, reason)
            full = Path(stored) if Path(stored).is_absolute() else ctx.output_dir / stored
            assert image_problem(full) is None
