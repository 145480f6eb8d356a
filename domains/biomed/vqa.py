"""Benchmarks `vqa_rad`, `slake` and `path_vqa`: medical VQA sets read from the files people download.

Layouts (under `path`, relative to the data root):

- **VQA-RAD**, OSF release: `VQA_RAD Dataset Public.json` (list of `{qid, image_name, question, answer,
  answer_type: "CLOSED"|"OPEN", phrase_type, image_organ, question_type}`; `phrase_type` starting with `test` marks
  the test split) + `VQA_RAD Image Folder/`. Or LLaVA-Med's converted files: `<split>.json` (list of `{id, image,
  conversations: [human, gpt], answer_type}`) with the images in `images/` (or beside it). Or the Hub copy
  `flaviagiammarino/vqa-rad` as Parquet (`data/train-*.parquet`, `data/test-*.parquet`; columns `image {bytes,
  path}`, `question`, `answer`), which has no answer type: `answer_type_file` can supply the official ones.
- **SLAKE** (`BoKelvin/SLAKE`): `train.json`, `validation.json` (the official release names it `validate.json`;
  either is read for `split: validation` or `validate`), `test.json` (list of `{qid, img_name, question, answer,
  answer_type, q_lang, modality, location, content_type}`) + `imgs/<img_name>`. Only English questions by default
  (`q_lang == "en"`).
- **PathVQA** (`flaviagiammarino/path-vqa`): Parquet `data/{train,validation,test}-*.parquet` as for VQA-RAD.

Answer types come from the data wherever it has them, and otherwise from the yes/no rule, which the metrics then
report (`answer_types.py`). Images stored inside Parquet files are written once each (named by content hash) under
`output_dir/<benchmark>/`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llava_adapt.plugin import Skip, SourceContext, VQAItem, read_json_list, relative_to_root

from .answer_types import (
    OFFICIAL,
    RULE,
    SOURCE_KEY,
    AnswerType,
    AnswerTypes,
    official_type,
    read_answer_types,
    rule_type,
)
from .files import decode_image_bytes, inside, resolve_input, save_png
from .metrics import normalize_answer

VQA_RAD_JSON = "VQA_RAD Dataset Public.json"
VQA_RAD_IMAGES = "VQA_RAD Image Folder"
# SLAKE's validation split: the Hub copy's name, then the official release's.
SLAKE_VALIDATION = ("validation.json", "validate.json")
SLAKE_SPLIT_FILES = {"validation": SLAKE_VALIDATION, "validate": SLAKE_VALIDATION, "val": SLAKE_VALIDATION}


class VQAArgs(BaseModel):
    """Arguments of the `vqa_rad` and `path_vqa` benchmarks (recipe `evaluate.args.<name>`).

    Args:
        path (`str`): the dataset folder, relative to the data root.
        split (`str`, defaults to `"test"`): `train`, `validation` (PathVQA) or `test`.
        answer_types (`list["closed" | "open"]`, defaults to both): which questions to keep.
        limit (`int | None`, defaults to `None`): keep at most this many questions (in file order).
        answer_type_file (`str | None`, defaults to `None`): official answer types for questions whose file has none
            (VQA-RAD's Hub Parquet copy), relative to the data root: the OSF JSON, LLaVA-Med's converted test file,
            or a JSON object from item id to `CLOSED` / `OPEN` (see `answer_types.py`).
    """

    model_config = ConfigDict(extra="forbid")

    path: str
    split: str = "test"
    answer_types: list[AnswerType] = Field(default_factory=lambda: ["closed", "open"])
    limit: int | None = Field(None, ge=1)
    answer_type_file: str | None = None


class SlakeArgs(VQAArgs):
    """Arguments of the `slake` benchmark: those of `VQAArgs`, plus

    Args:
        language (`"en" | "zh" | "all"`, defaults to `"en"`): keep questions in this language (`q_lang`).
    """

    language: Literal["en", "zh", "all"] = "en"


def load_vqa_rad(args: VQAArgs, ctx: SourceContext) -> Iterator[VQAItem | Skip]:
    """Yield VQA-RAD items from the OSF JSON release or the Hub Parquet copy (whichever `path` holds)."""
    root = resolve_input(ctx.data_root, args.path, "VQA-RAD folder")
    types = _side_types(args, ctx)
    converted = root / f"{args.split}.json"
    if (root / VQA_RAD_JSON).is_file():
        rows = read_json_list(root / VQA_RAD_JSON)
        items = (_vqa_rad_item(row, where, root, ctx, args.split, types) for where, row in rows)
        yield from _limit((i for i in items if i is not None), args)
    elif converted.is_file():
        yield from _limit(_llava_med_items(converted, root, ctx, types), args)
    else:
        yield from _limit(_parquet_items(root, "vqa_rad", args.split, ctx, types), args)


def load_slake(args: SlakeArgs, ctx: SourceContext) -> Iterator[VQAItem | Skip]:
    """Yield SLAKE items of `args.split`, English only unless `args.language` says otherwise."""
    root = resolve_input(ctx.data_root, args.path, "SLAKE folder")
    names = SLAKE_SPLIT_FILES.get(args.split, (f"{args.split}.json",))
    path = next((root / name for name in names if (root / name).is_file()), root / names[0])
    if not path.is_file():
        raise FileNotFoundError(
            f"SLAKE split file {' or '.join(names)} not found in {root} (expected train.json, validation.json or "
            "validate.json, test.json)"
        )
    types = _side_types(args, ctx)

    def items() -> Iterator[VQAItem | Skip]:
        for where, row in read_json_list(path):
            if args.language != "all" and str(row.get("q_lang", "en")) != args.language:
                continue
            missing = [k for k in ("img_name", "question", "answer") if row.get(k) in (None, "")]
            if missing:
                yield Skip(where, f"missing {missing[0]}")
                continue
            image = _local_image(root / "imgs", str(row["img_name"]), ctx.data_root)
            if image is None:
                yield Skip(where, "image path escapes the data root")
                continue
            meta = {k: row[k] for k in ("modality", "location", "content_type", "q_lang") if row.get(k)}
            yield _item(f"slake-{row.get('qid', where)}", image, row, row.get("answer_type"), meta, types)

    yield from _limit(items(), args)


def load_path_vqa(args: VQAArgs, ctx: SourceContext) -> Iterator[VQAItem | Skip]:
    """Yield PathVQA items from the Hub Parquet layout."""
    root = resolve_input(ctx.data_root, args.path, "PathVQA folder")
    types = _side_types(args, ctx)
    yield from _limit(_parquet_items(root, "path_vqa", args.split, ctx, types, rule_is_official=True), args)


def _side_types(args: VQAArgs, ctx: SourceContext) -> AnswerTypes | None:
    if args.answer_type_file is None:
        return None
    path = resolve_input(ctx.data_root, args.answer_type_file, "answer_type_file")
    return read_answer_types(path)


def _limit(items: Iterator[VQAItem | Skip], args: VQAArgs) -> Iterator[VQAItem | Skip]:
    count = 0
    for item in items:
        if isinstance(item, VQAItem):
            if item.answer_type not in args.answer_types:
                continue
            count += 1
        yield item
        if args.limit is not None and count >= args.limit:
            return


def _item(
    item_id: str,
    image: str,
    row: dict[str, Any],
    answer_type: Any,
    meta: dict[str, Any],
    types: AnswerTypes | None,
    rule_is_official: bool = False,
) -> VQAItem:
    """A benchmark item; its answer type is the row's, else the side file's, else the yes/no rule's (recorded in
    `meta[SOURCE_KEY]`)."""
    answer = " ".join(str(row["answer"]).split())
    question = " ".join(str(row["question"]).split())
    kind = official_type(answer_type) or (types.lookup(item_id, question, answer) if types else None)
    source = OFFICIAL
    if kind is None:
        kind, source = rule_type(answer), OFFICIAL if rule_is_official else RULE
    meta = {**meta, SOURCE_KEY: source}
    choices = []
    if kind == "closed" and normalize_answer(answer) in ("yes", "no"):
        answer, choices = normalize_answer(answer), ["yes", "no"]  # "Yes" -> "yes": the answer is one of the choices
    return VQAItem(
        id=item_id,
        image=image,
        question=question,
        answer=answer,
        answer_type=kind,
        choices=choices,
        meta=meta,
    )


def _vqa_rad_item(
    row: dict[str, Any], where: str, root: Path, ctx: SourceContext, split: str, types: AnswerTypes | None
) -> VQAItem | Skip | None:
    is_test = str(row.get("phrase_type", "")).startswith("test")
    if (split == "test") != is_test:
        return None
    missing = [k for k in ("image_name", "question", "answer") if row.get(k) in (None, "")]
    if missing:
        return Skip(where, f"missing {missing[0]}")
    image = _local_image(root / VQA_RAD_IMAGES, str(row["image_name"]), ctx.data_root)
    if image is None:
        return Skip(where, "image path escapes the data root")
    meta = {k: row[k] for k in ("image_organ", "question_type", "phrase_type") if row.get(k)}
    return _item(f"vqa_rad-{row.get('qid', where)}", image, row, row.get("answer_type"), meta, types)


def _llava_med_items(
    path: Path, root: Path, ctx: SourceContext, types: AnswerTypes | None
) -> Iterator[VQAItem | Skip]:
    """VQA-RAD in LLaVA-Med's converted layout: `{id, image, conversations: [human, gpt], answer_type}` rows."""
    for where, row in read_json_list(path):
        turns = row.get("conversations")
        if not (isinstance(turns, list) and len(turns) >= 2 and all(isinstance(t, dict) for t in turns[:2])):
            yield Skip(where, "missing conversations")
            continue
        fields = {"question": str(turns[0].get("value", "")).replace("<image>", "").strip(),
                  "answer": str(turns[1].get("value", "")).strip()}  # fmt: skip
        missing = [k for k in ("image", "question", "answer") if not (fields | {"image": row.get("image")})[k]]
        if missing:
            yield Skip(where, f"missing {missing[0]}")
            continue
        name = str(row["image"])
        candidates = [_local_image(root / folder, name, ctx.data_root) for folder in ("images", VQA_RAD_IMAGES, ".")]
        if any(c is None for c in candidates):
            yield Skip(where, "image path escapes the data root")
            continue
        image = next((c for c in candidates if (ctx.data_root / c).is_file()), candidates[0])
        yield _item(f"vqa_rad-{row.get('id', where)}", image, fields, row.get("answer_type"), {}, types)


def _local_image(folder: Path, name: str, data_root: Path) -> str | None:
    full = inside(folder, name)
    return None if full is None else relative_to_root(data_root, full)


def _parquet_items(
    root: Path, name: str, split: str, ctx: SourceContext, types: AnswerTypes | None, rule_is_official: bool = False
) -> Iterator[VQAItem | Skip]:
    import pyarrow.parquet as pq

    files = sorted(
        p for p in root.rglob("*.parquet") if p.name == f"{split}.parquet" or p.name.startswith(f"{split}-")
    )
    if not files:
        raise FileNotFoundError(f"no {split}-*.parquet under {root} (expected the Hub layout data/{split}-*.parquet)")
    written: set[str] = set()
    number = 0
    for path in files:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=256):
            for row in batch.to_pylist():
                where = f"{path.name}#row{number}"
                number += 1
                if row.get("question") in (None, "") or row.get("answer") in (None, ""):
                    yield Skip(where, "missing question or answer")
                    continue
                image = _parquet_image(row.get("image"), name, split, ctx, written)
                if image is None:
                    yield Skip(where, "corrupt or missing image")
                    continue
                item_id = f"{name}-{split}-{number - 1}"
                yield _item(item_id, image, row, row.get("answer_type"), {}, types, rule_is_official)


def _parquet_image(value: Any, name: str, split: str, ctx: SourceContext, written: set[str]) -> str | None:
    data = value.get("bytes") if isinstance(value, dict) else value if isinstance(value, bytes) else None
    if not data:
        return None
    digest = hashlib.sha1(data).hexdigest()[:16]
    relative = f"{name}/{split}/{digest}.png"
    if digest not in written:
        image = decode_image_bytes(data)
        if image is None:
            return None
        save_png(image, ctx.output_dir / relative)
        written.add(digest)
    return relative
