"""Benchmarks `llava_bench_coco` and `llava_bench_wild`: LLaVA-Bench's free-form questions, in the released files.

Both ask open questions of three kinds (`category`: `conv` — conversation, `detail` — detailed description,
`complex` — complex reasoning) and come with text-only GPT-4's answers, which the judge (`llava_bench_judge.py`)
takes as the reference (Assistant 1), and a text description of each image, which stands in for the image when
the judge compares the model's answer with the reference. One JSON object per line in every file.

**LLaVA-Bench (COCO)**, from the LLaVA repository: 30 COCO val2014 images x 3 questions = 90.

- `playground/data/coco2014_val_qa_eval/qa90_questions.jsonl`:
  `{"question_id": 0, "image": "000000441147.jpg", "text": "What is the color of the two suitcases in the
  image?", "category": "conv"}`;
- `playground/data/coco2014_val_qa_eval/qa90_gpt4_answer.jsonl`: `{"question_id": 0, "text": "...",
  "category": "conv"}`, GPT-4's answers from the captions and boxes below;
- `llava/eval/table/caps_boxes_coco2014_val_80.jsonl`: `{"id": "000000441147", "image": "000000441147.jpg",
  "captions": ["Two antique suitcases sit stacked one on top of the other.", ...], "instances": [{"category":
  "suitcase", "bbox": [0.167, 0.025, 0.989, 0.445]}, ...]}`, boxes as `[x1, y1, x2, y2]` normalised to [0, 1].

The images are COCO val2014's. Their names in the question file lack COCO's `COCO_val2014_` prefix: in `image_dir`
(default `val2014`, COCO's own folder) an image is looked up under its name, then under the prefixed name.

**LLaVA-Bench (In-the-Wild)**, the Hub dataset `liuhaotian/llava-bench-in-the-wild`: 24 images, 60 questions.

- `questions.jsonl`: `{"question_id": 0, "image": "001.jpg", "text": "What is the name of this famous sight in the
  photo?", "category": "conv"}`;
- `context.jsonl`: `{"id": ..., "image": "001.jpg", "caption": "..."}`, a description written by hand;
- `answers_gpt4.jsonl`: `{"question_id": 0, "prompt": "...", "answer_id": "...", "model_id": "gpt-4-0314",
  "metadata": {}, "text": "..."}`;
- `images/`.

The judge's context is rendered as LLaVA's review scripts did: for COCO (`eval_gpt_review_visual.py`) the captions
one per line, a blank line, then one line per instance, `category: [x1, y1, x2, y2]` with the box as Python prints
the list (`suitcase: [0.167, 0.025, 0.989, 0.445]`); for In-the-Wild (`eval_gpt_review_bench.py`) the caption. A
caption given as a list is joined one per line (LLaVA's script joins whatever it gets with newlines, which would put
a newline between the characters of a string). References are matched by `question_id` (LLaVA pairs the lines of
the two files by position), contexts by `image`.

A question that cannot be used is skipped with its reason: `"not a JSON object"`, `"missing <key>"` (question_id,
image, text or category), `"unknown category"`, `"duplicate question_id"`, `"no reference answer"`, `"image has no
context"`, `"malformed context"` and `"image path escapes the data root"`. The reference and context files are
lookup tables: a line that is not a JSON object, lacks its key (`question_id`, `image`) or repeats one stops the
run with an error naming the file and line, since every question it would have served would be skipped for a
reason that hides the cause. Whether each image exists and decodes is checked by the evaluate stage.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from llava_adapt.plugin import RecordFileError, Skip, SourceContext, VQAItem, read_jsonl

from .paths import ESCAPES, image_path, input_path

CATEGORIES = ("conv", "detail", "complex")
COCO_PREFIX = "COCO_val2014_"
REQUIRED = ("question_id", "image", "text", "category")

Render = Callable[[dict[str, Any]], "str | None"]


class LlavaBenchCocoArgs(BaseModel):
    """Arguments of the `llava_bench_coco` benchmark (recipe `evaluate.args.llava_bench_coco`).

    Args:
        questions (`str`, defaults to `"qa90_questions.jsonl"`): the questions, relative to the data root.
        answers (`str`, defaults to `"qa90_gpt4_answer.jsonl"`): GPT-4's reference answers, relative to the data root.
        context (`str`, defaults to `"caps_boxes_coco2014_val_80.jsonl"`): the captions and boxes per image,
            relative to the data root.
        image_dir (`str`, defaults to `"val2014"`): the folder of COCO val2014 images, relative to the data root.
        limit (`int | None`, defaults to `None`): keep at most this many questions (in file order).
    """

    model_config = ConfigDict(extra="forbid")

    questions: str = "qa90_questions.jsonl"
    answers: str = "qa90_gpt4_answer.jsonl"
    context: str = "caps_boxes_coco2014_val_80.jsonl"
    image_dir: str = "val2014"
    limit: int | None = Field(None, ge=1)


class LlavaBenchWildArgs(BaseModel):
    """Arguments of the `llava_bench_wild` benchmark (recipe `evaluate.args.llava_bench_wild`).

    Args:
        questions (`str`, defaults to `"questions.jsonl"`): the questions, relative to the data root.
        answers (`str`, defaults to `"answers_gpt4.jsonl"`): GPT-4's reference answers, relative to the data root.
        context (`str`, defaults to `"context.jsonl"`): the description of each image, relative to the data root.
        image_dir (`str`, defaults to `"images"`): the folder of the images, relative to the data root.
        limit (`int | None`, defaults to `None`): keep at most this many questions (in file order).
    """

    model_config = ConfigDict(extra="forbid")

    questions: str = "questions.jsonl"
    answers: str = "answers_gpt4.jsonl"
    context: str = "context.jsonl"
    image_dir: str = "images"
    limit: int | None = Field(None, ge=1)


def load_coco(args: LlavaBenchCocoArgs, ctx: SourceContext) -> Iterator[VQAItem | Skip]:
    """Yield LLaVA-Bench (COCO)'s questions (see the module docstring for the files and skip reasons).

    Args:
        args (`LlavaBenchCocoArgs`): the benchmark's arguments.
        ctx (`SourceContext`): the data root the paths are relative to.

    Raises:
        ValueError: a path escapes the data root.
        FileNotFoundError: a file or the image folder does not exist.
        RecordFileError: the reference or context file has a malformed, keyless or repeated line.
    """
    yield from _load("llava_bench_coco", args, ctx, coco_context, rule_prefix="", image_prefix=COCO_PREFIX)


def load_wild(args: LlavaBenchWildArgs, ctx: SourceContext) -> Iterator[VQAItem | Skip]:
    """Yield LLaVA-Bench (In-the-Wild)'s questions (see the module docstring for the files and skip reasons).

    Args:
        args (`LlavaBenchWildArgs`): the benchmark's arguments.
        ctx (`SourceContext`): the data root the paths are relative to.

    Raises:
        ValueError: a path escapes the data root.
        FileNotFoundError: a file or the image folder does not exist.
        RecordFileError: the reference or context file has a malformed, keyless or repeated line.
    """
    yield from _load("llava_bench_wild", args, ctx, wild_context, rule_prefix="llava_bench_", image_prefix="")


def coco_context(entry: dict[str, Any]) -> str | None:
    """The judge's context for a COCO image: captions, a blank line, `category: [x1, y1, x2, y2]` per instance.

    Returns `None` when the entry is malformed (captions not a list of strings, an instance without a category
    or a 4-number box).
    """
    captions, instances = entry.get("captions"), entry.get("instances", [])
    if not (isinstance(captions, list) and captions and all(isinstance(c, str) for c in captions)):
        return None
    if not isinstance(instances, list):
        return None
    boxes = []
    for instance in instances:
        if not isinstance(instance, dict) or not isinstance(instance.get("category"), str):
            return None
        bbox = instance.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
            return None
        boxes.append(f"{instance['category']}: [{', '.join(repr(v) for v in bbox)}]")
    return "\n".join(captions) + "\n\n" + "\n".join(boxes)


def wild_context(entry: dict[str, Any]) -> str | None:
    """The judge's context for an In-the-Wild image: its caption (a list is joined one per line); `None` when the
    caption is missing, empty or not text."""
    caption = entry.get("caption")
    if isinstance(caption, list) and caption and all(isinstance(c, str) for c in caption):
        return "\n".join(caption)
    if isinstance(caption, str) and caption.strip():
        return caption
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _load(
    bench: str,
    args: LlavaBenchCocoArgs | LlavaBenchWildArgs,
    ctx: SourceContext,
    render: Render,
    rule_prefix: str,
    image_prefix: str,
) -> Iterator[VQAItem | Skip]:
    questions = input_path(ctx.data_root, args.questions, f"{bench} questions file")
    references = _references(input_path(ctx.data_root, args.answers, f"{bench} reference answers file"))
    contexts = _contexts(input_path(ctx.data_root, args.context, f"{bench} context file"))
    image_dir = input_path(ctx.data_root, args.image_dir, f"{bench} image folder", kind="folder")
    root = ctx.data_root
    seen: set[str] = set()
    count = 0
    with questions.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"{questions.name}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = None
            if not isinstance(row, dict):
                yield Skip(where, "not a JSON object")
                continue
            missing = next((key for key in REQUIRED if row.get(key) in (None, "")), None)
            if missing is not None:
                yield Skip(where, f"missing {missing}")
                continue
            qid, category, name = str(row["question_id"]), str(row["category"]), str(row["image"])
            if category not in CATEGORIES:
                yield Skip(where, "unknown category")
                continue
            if qid in seen:
                yield Skip(where, "duplicate question_id")
                continue
            seen.add(qid)
            if not references.get(qid):
                yield Skip(where, "no reference answer")
                continue
            if name not in contexts:
                yield Skip(where, "image has no context")
                continue
            context = render(contexts[name])
            if context is None:
                yield Skip(where, "malformed context")
                continue
            stored = _image(root, image_dir, name, image_prefix)
            if stored is None:
                yield Skip(where, ESCAPES)
                continue
            yield VQAItem(
                id=f"{bench}-{qid}",
                image=stored,
                question=str(row["text"]).replace("<image>", "").strip(),
                answer=references[qid],
                answer_type="open",
                meta={"question_id": qid, "category": category, "rule": rule_prefix + category, "context": context},
            )
            count += 1
            if args.limit is not None and count >= args.limit:
                return


def _image(root: Path, image_dir: Path, name: str, prefix: str) -> str | None:
    """The image's path relative to the data root: `name` in `image_dir`, else `prefix` + its file name when only
    that file exists; `None` when the name escapes the data root."""
    stored = image_path(root, image_dir, name)
    if stored is None or not prefix or (root / stored).is_file():
        return stored
    prefixed = image_path(root, image_dir, str(Path(name).with_name(prefix + Path(name).name)))
    return prefixed if prefixed is not None and (root / prefixed).is_file() else stored


def _references(path: Path) -> dict[str, str]:
    """`question_id` → reference answer text (`""` when the line has none)."""
    out: dict[str, str] = {}
    for number, row in read_jsonl(path):
        if row.get("question_id") in (None, ""):
            raise RecordFileError(f"{path}:{number}: no question_id; reference answers are matched by question_id")
        qid = str(row["question_id"])
        if qid in out:
            raise RecordFileError(f"{path}:{number}: question_id {qid} has a reference answer already")
        text = row.get("text")
        out[qid] = text if isinstance(text, str) and text.strip() else ""
    return out


def _contexts(path: Path) -> dict[str, dict[str, Any]]:
    """`image` → the context file's entry for it."""
    out: dict[str, dict[str, Any]] = {}
    for number, row in read_jsonl(path):
        if not isinstance(row.get("image"), str) or not row["image"]:
            raise RecordFileError(f"{path}:{number}: no image; contexts are matched to questions by image")
        if row["image"] in out:
            raise RecordFileError(f"{path}:{number}: image {row['image']} has a context already")
        out[row["image"]] = row
    return out
