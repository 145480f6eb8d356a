"""Small LLaVA-Bench files in the released layouts: LLaVA's COCO qa90 files and the In-the-Wild Hub dataset.

Field names and shapes are the released ones; the COCO rows are shortened from LLaVA's own files (the captions and
boxes of 000000441147 are the real ones). Every image is a real JPEG.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

SUITCASE_CAPTIONS = [
    "Two antique suitcases sit stacked one on top of the other.",
    "Two suitcases are stacked on each other and one is black while the other is brown and yellow.",
    "a close up of two luggage suit cases stacked on each other",
    "A stack of antique luggage is displayed with price tags.",
    "two suitcases made of leather and stacked on top of each other",
]
SUITCASE_INSTANCES = [
    {"category": "suitcase", "bbox": [0.167, 0.025, 0.989, 0.445]},
    {"category": "suitcase", "bbox": [0.002, 0.31, 0.994, 0.996]},
]
# What the judge reads for 000000441147, as LLaVA's eval_gpt_review_visual.py lays it out.
SUITCASE_CONTEXT = (
    "\n".join(SUITCASE_CAPTIONS) + "\n\nsuitcase: [0.167, 0.025, 0.989, 0.445]\nsuitcase: [0.002, 0.31, 0.994, 0.996]"
)
CAR_CAPTIONS = [
    "A car parked by a parking meter in front of a building.",
    "A black car parked on the side of the road.",
]
CAR_INSTANCES = [
    {"category": "car", "bbox": [0.227, 0.362, 0.946, 0.761]},
    {"category": "parking meter", "bbox": [0, 0.35, 1, 0.453]},
]
CAR_CONTEXT = "\n".join(CAR_CAPTIONS) + "\n\ncar: [0.227, 0.362, 0.946, 0.761]\nparking meter: [0, 0.35, 1, 0.453]"

COCO_QUESTIONS = [
    {
        "question_id": 0,
        "image": "000000441147.jpg",
        "text": "What is the color of the two suitcases in the image?",
        "category": "conv",
    },
    {
        "question_id": 1,
        "image": "000000441147.jpg",
        "text": "Analyze the image in a comprehensive and detailed manner.",
        "category": "detail",
    },
    {
        "question_id": 2,
        "image": "000000441147.jpg",
        "text": "What potential factors could make these suitcases valuable?",
        "category": "complex",
    },
    {
        "question_id": 42,
        "image": "000000097131.jpg",
        "text": "What is the main focus of the image?",
        "category": "conv",
    },
]
COCO_ANSWERS = [
    {
        "question_id": 0,
        "text": "The colors of the two suitcases in the image are black and brown with yellow details.",
        "category": "conv",
    },
    {
        "question_id": 1,
        "text": "The image features two antique suitcases made of leather, stacked one on top of the other.",
        "category": "detail",
    },
    {
        "question_id": 2,
        "text": "Several factors could make the two stacked suitcases valuable: age and rarity.",
        "category": "complex",
    },
    {
        "question_id": 42,
        "text": "The main focus of the image is a car parked on the side of the road.",
        "category": "conv",
    },
]
COCO_CONTEXTS = [
    {
        "id": "000000441147",
        "image": "000000441147.jpg",
        "captions": SUITCASE_CAPTIONS,
        "instances": SUITCASE_INSTANCES,
    },
    {"id": "000000097131", "image": "000000097131.jpg", "captions": CAR_CAPTIONS, "instances": CAR_INSTANCES},
]

WILD_QUESTIONS = [
    {
        "question_id": 0,
        "image": "001.jpg",
        "text": "What is the name of this famous sight in the photo?",
        "category": "conv",
    },
    {"question_id": 1, "image": "001.jpg", "text": "Describe this photo in detail.", "category": "detail"},
    {
        "question_id": 2,
        "image": "002.jpg",
        "text": "Why might this meal be a good choice before a long hike?",
        "category": "complex",
    },
]
WILD_CAPTION_1 = "An aerial view of Diamond Head, a volcanic crater on Oahu, with the city of Honolulu below it."
WILD_CAPTION_2 = ["A bowl of oatmeal topped with sliced banana and blueberries.", "A glass of water stands beside it."]
WILD_CONTEXTS = [
    {"id": "001", "image": "001.jpg", "caption": WILD_CAPTION_1},
    {"id": "002", "image": "002.jpg", "caption": WILD_CAPTION_2},
]
WILD_ANSWERS = [
    {
        "question_id": 0,
        "prompt": "What is the name of this famous sight in the photo?",
        "answer_id": "TeyehNxHw5j8naXf",
        "model_id": "gpt-4-0314",
        "metadata": {},
        "text": "The famous sight in the photo is Diamond Head.",
    },
    {
        "question_id": 1,
        "prompt": "Describe this photo in detail.",
        "answer_id": "a2",
        "model_id": "gpt-4-0314",
        "metadata": {},
        "text": "The photo shows Diamond Head crater from above, with Honolulu at its foot.",
    },
    {
        "question_id": 2,
        "prompt": "Why might this meal be a good choice before a long hike?",
        "answer_id": "a3",
        "model_id": "gpt-4-0314",
        "metadata": {},
        "text": "Oatmeal releases energy slowly and the fruit adds sugars.",
    },
]


def _jpeg(path: Path, colour: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 32), colour).save(path, format="JPEG")


def _jsonl(path: Path, rows: list[dict], extra_lines: tuple[str, ...] = ()) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([*(json.dumps(row) for row in rows), *extra_lines]) + "\n", encoding="utf-8")


def write_coco_bench(
    root: Path,
    extra_questions: tuple[str, ...] = (),
    extra_answers: tuple[str, ...] = (),
    extra_contexts: tuple[str, ...] = (),
) -> None:
    """Write `qa90_questions.jsonl`, `qa90_gpt4_answer.jsonl`, `caps_boxes_coco2014_val_80.jsonl` under `root` and
    two images under `root/val2014/`: one with COCO's `COCO_val2014_` prefix, one without. `extra_*` lines are
    appended verbatim."""
    _jsonl(root / "qa90_questions.jsonl", COCO_QUESTIONS, extra_questions)
    _jsonl(root / "qa90_gpt4_answer.jsonl", COCO_ANSWERS, extra_answers)
    _jsonl(root / "caps_boxes_coco2014_val_80.jsonl", COCO_CONTEXTS, extra_contexts)
    _jpeg(root / "val2014" / "COCO_val2014_000000441147.jpg", (120, 80, 40))
    _jpeg(root / "val2014" / "000000097131.jpg", (30, 30, 30))


def write_wild_bench(root: Path) -> None:
    """Write the In-the-Wild files as the Hub dataset has them under `root/llava-bench-in-the-wild/`."""
    folder = root / "llava-bench-in-the-wild"
    _jsonl(folder / "questions.jsonl", WILD_QUESTIONS)
    _jsonl(folder / "context.jsonl", WILD_CONTEXTS)
    _jsonl(folder / "answers_gpt4.jsonl", WILD_ANSWERS)
    _jpeg(folder / "images" / "001.jpg", (60, 120, 60))
    _jpeg(folder / "images" / "002.jpg", (200, 200, 160))


WILD_ARGS = {
    "questions": "llava-bench-in-the-wild/questions.jsonl",
    "context": "llava-bench-in-the-wild/context.jsonl",
    "answers": "llava-bench-in-the-wild/answers_gpt4.jsonl",
    "image_dir": "llava-bench-in-the-wild/images",
}
