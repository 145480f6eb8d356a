"""LLaVA-Bench (COCO, In-the-Wild): loaders on the released layouts, skips and errors, offline metrics, registration
and the recipe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llava_adapt.data.jsonl import RecordFileError
from llava_adapt.data.records import Skip, VQAItem
from llava_adapt.domain import SourceContext, check_domain
from llava_adapt.domains.general import domain
from llava_adapt.domains.general.chat_metrics import chat_metrics, token_f1, token_recall
from llava_adapt.domains.general.llava_bench import (
    LlavaBenchCocoArgs,
    LlavaBenchWildArgs,
    coco_context,
    load_coco,
    load_wild,
    wild_context,
)
from llava_adapt.domains.general.llava_bench_judge import JUDGE
from llava_adapt.recipe.loader import RecipeError, check_against_domain, load_recipe

from .llava_bench_files import (
    CAR_CONTEXT,
    COCO_QUESTIONS,
    SUITCASE_CONTEXT,
    WILD_ARGS,
    WILD_CAPTION_1,
    WILD_CAPTION_2,
    write_coco_bench,
    write_wild_bench,
)


def _coco(root: Path, **args) -> list[VQAItem | Skip]:
    return list(load_coco(LlavaBenchCocoArgs(**args), SourceContext(data_root=root, output_dir=root / "out")))


def _wild(root: Path, **args) -> list[VQAItem | Skip]:
    args = {**WILD_ARGS, **args}
    return list(load_wild(LlavaBenchWildArgs(**args), SourceContext(data_root=root, output_dir=root / "out")))


def test_coco_reads_the_released_layout(tmp_path: Path) -> None:
    write_coco_bench(tmp_path)
    items = _coco(tmp_path)
    assert [i.id for i in items] == [
        "llava_bench_coco-0",
        "llava_bench_coco-1",
        "llava_bench_coco-2",
        "llava_bench_coco-42",
    ]
    first, detail, _, car = items
    assert first.question == "What is the color of the two suitcases in the image?" and first.answer_type == "open"
    assert first.answer == "The colors of the two suitcases in the image are black and brown with yellow details."
    # The question file says 000000441147.jpg; COCO's val2014 folder has it with its COCO_val2014_ prefix.
    assert first.image == "val2014/COCO_val2014_000000441147.jpg" and (tmp_path / first.image).is_file()
    assert car.image == "val2014/000000097131.jpg"
    assert first.meta == {"question_id": "0", "category": "conv", "rule": "conv", "context": SUITCASE_CONTEXT}
    assert (detail.meta["category"], detail.meta["rule"]) == ("detail", "detail")
    assert car.meta["context"] == CAR_CONTEXT  # integer box values print as Python prints them: 0, 1


def test_coco_context_is_laid_out_as_llava_did() -> None:
    entry = {"captions": ["A cat.", "A kitten."], "instances": [{"category": "cat", "bbox": [0.1, 0.2, 0.5, 1.0]}]}
    assert coco_context(entry) == "A cat.\nA kitten.\n\ncat: [0.1, 0.2, 0.5, 1.0]"
    # No instances (three of LLaVA's 80 images): the captions, then an empty box block, as LLaVA's f-string gives.
    assert coco_context({"captions": ["A street sign."], "instances": []}) == "A street sign.\n\n"
    assert coco_context({"captions": "A cat.", "instances": []}) is None
    assert coco_context({"captions": ["A cat."], "instances": [{"category": "cat", "bbox": [1, 2, 3]}]}) is None
    assert coco_context({"captions": ["A cat."], "instances": [{"category": "cat", "bbox": [1, 2, 3, True]}]}) is None
    assert wild_context({"caption": "A crater."}) == "A crater."
    assert wild_context({"caption": ["One.", "Two."]}) == "One.\nTwo."
    assert wild_context({"caption": "  "}) is None and wild_context({}) is None


def test_wild_reads_the_hub_layout(tmp_path: Path) -> None:
    write_wild_bench(tmp_path)
    items = _wild(tmp_path)
    assert [i.id for i in items] == ["llava_bench_wild-0", "llava_bench_wild-1", "llava_bench_wild-2"]
    assert items[0].answer == "The famous sight in the photo is Diamond Head."
    assert items[0].image == "llava-bench-in-the-wild/images/001.jpg"
    assert items[0].meta == {
        "question_id": "0",
        "category": "conv",
        "rule": "llava_bench_conv",
        "context": WILD_CAPTION_1,
    }
    assert [i.meta["rule"] for i in items] == ["llava_bench_conv", "llava_bench_detail", "llava_bench_complex"]
    assert items[2].meta["context"] == "\n".join(WILD_CAPTION_2)
    assert [i.id for i in _wild(tmp_path, limit=2)] == ["llava_bench_wild-0", "llava_bench_wild-1"]


def test_bad_questions_are_skipped_with_a_reason(tmp_path: Path) -> None:
    def question(**kw) -> str:
        return json.dumps({**COCO_QUESTIONS[0], **kw})

    write_coco_bench(
        tmp_path,
        extra_questions=(
            "{not json",
            "[1, 2]",
            question(question_id=50, text=""),
            question(question_id=51, category="conversation"),
            question(),  # question_id 0 again
            question(question_id=52),  # no reference answer
            question(question_id=53, image="000000999999.jpg"),  # not in the context file
            question(question_id=54, image="../../etc/passwd.jpg"),
            question(question_id=55, image="000000555555.jpg"),
            question(question_id=56),  # its reference text is empty
        ),
        extra_answers=tuple(json.dumps({"question_id": q, "text": "An answer."}) for q in (50, 51, 53, 54, 55))
        + (json.dumps({"question_id": 56, "text": " "}),),
        extra_contexts=(
            json.dumps({"image": "../../etc/passwd.jpg", "captions": ["x"], "instances": []}),
            json.dumps({"image": "000000555555.jpg", "captions": "not a list", "instances": []}),
        ),
    )
    out = _coco(tmp_path)
    skips = [(s.id, s.reason) for s in out if isinstance(s, Skip)]
    assert skips == [
        ("qa90_questions.jsonl:5", "not a JSON object"),
        ("qa90_questions.jsonl:6", "not a JSON object"),
        ("qa90_questions.jsonl:7", "missing text"),
        ("qa90_questions.jsonl:8", "unknown category"),
        ("qa90_questions.jsonl:9", "duplicate question_id"),
        ("qa90_questions.jsonl:10", "no reference answer"),
        ("qa90_questions.jsonl:11", "image has no context"),
        ("qa90_questions.jsonl:12", "image path escapes the data root"),
        ("qa90_questions.jsonl:13", "malformed context"),
        ("qa90_questions.jsonl:14", "no reference answer"),
    ]
    assert sum(isinstance(o, VQAItem) for o in out) == 4


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"extra_answers": ("{broken",)}, r"qa90_gpt4_answer.jsonl:5: not valid JSON"),
        ({"extra_answers": ('{"text": "no id"}',)}, r"qa90_gpt4_answer.jsonl:5: no question_id"),
        ({"extra_answers": ('{"question_id": 0, "text": "again"}',)}, r":5: question_id 0 has a reference answer"),
        ({"extra_contexts": ('{"captions": ["x"]}',)}, r"caps_boxes_coco2014_val_80.jsonl:3: no image"),
        ({"extra_contexts": ('{"image": "000000097131.jpg", "captions": ["x"]}',)}, r":3: image 000000097131.jpg"),
    ],
)
def test_a_broken_lookup_file_stops_with_file_and_line(tmp_path: Path, extra: dict, message: str) -> None:
    write_coco_bench(tmp_path, **extra)
    with pytest.raises(RecordFileError, match=message):
        _coco(tmp_path)


def test_missing_files_and_escaping_paths_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="llava_bench_coco questions file"):
        _coco(tmp_path)
    write_coco_bench(tmp_path)
    with pytest.raises(ValueError, match="outside the data root"):
        _coco(tmp_path, answers="../qa90_gpt4_answer.jsonl")
    with pytest.raises(FileNotFoundError, match="llava_bench_coco image folder"):
        _coco(tmp_path, image_dir="coco/val2014")
    with pytest.raises(FileNotFoundError, match="llava_bench_wild questions file"):
        _wild(tmp_path)


def test_offline_metrics_worked_example() -> None:
    def item(category: str, answer: str) -> VQAItem:
        return VQAItem(
            id=category, image="x.jpg", question="q", answer=answer, answer_type="open", meta={"category": category}
        )

    reference = "The dog in the image is black."  # tokens: dog in image is black (articles dropped)
    assert token_recall("A black dog.", reference) == pytest.approx(2 / 5)
    assert token_f1("A black dog.", reference) == pytest.approx(2 * 1.0 * 0.4 / 1.4)
    # Clipped counts: "black" three times matches the reference's one "black" once.
    assert token_recall("black black black", reference) == pytest.approx(1 / 5)
    assert token_f1("black black black", reference) == pytest.approx(2 * (1 / 3) * 0.2 / (1 / 3 + 0.2))
    assert token_f1("", reference) == 0.0 and token_recall("", reference) == 0.0
    items = [item("conv", reference), item("conv", reference), item("detail", reference)]
    out = chat_metrics(items, ["A black dog.", "The dog in the image is black.", ""])
    assert out["token_recall"] == pytest.approx((0.4 + 1.0 + 0.0) / 3)
    assert out["token_recall/conv"] == pytest.approx(0.7) and out["token_recall/detail"] == 0.0
    assert out["token_f1/conv"] == pytest.approx((2 * 0.4 / 1.4 + 1.0) / 2)
    assert out["n_items"] == 3.0 and set(out) == {
        "n_items",
        "token_recall",
        "token_f1",
        "token_recall/conv",
        "token_f1/conv",
        "token_recall/detail",
        "token_f1/detail",
    }
    with pytest.raises(ValueError, match="pair up"):
        chat_metrics(items, [""])


def test_registered_with_the_judge_and_llava_answer_length() -> None:
    assert check_domain(domain, "general") is domain
    for name, args in (("llava_bench_coco", LlavaBenchCocoArgs), ("llava_bench_wild", LlavaBenchWildArgs)):
        bench = domain.benchmarks[name]
        assert bench.judge is JUDGE and bench.max_new_tokens == 1024 and bench.args is args
        assert bench.metrics is chat_metrics and bench.prompt == "{question}"  # LLaVA asks the question as is


def test_the_recipe_validates_with_llava_bench_and_a_judge() -> None:
    overrides = [
        "evaluate.benchmarks=[llava_bench_coco, llava_bench_wild]",
        "evaluate.judge={model: gpt-4o}",
        "evaluate.args.llava_bench_wild={questions: llava-bench-in-the-wild/questions.jsonl}",
    ]
    loaded = load_recipe("general", overrides=overrides)
    assert check_against_domain(loaded.recipe) == []
    assert loaded.recipe.evaluate.judge.model == "gpt-4o"
    with pytest.raises(RecipeError) as info:
        load_recipe(
            "general",
            overrides=[
                "evaluate.benchmarks=[llava_bench_coco]",
                "evaluate.args.llava_bench_coco.image_folder=val2014",
            ],
        )
    assert "Did you mean 'image_dir'?" in dict(info.value.problems)["evaluate.args.llava_bench_coco.image_folder"]
