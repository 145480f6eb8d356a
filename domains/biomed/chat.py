"""Benchmark `llava_med_chat`: LLaVA-Med's biomedical visual-chat evaluation set, judged by a GPT-4-class model.

Layout (as released in the LLaVA-Med repository, `data/eval/llava_med_eval_qa50_qa.jsonl`): one JSON object per
line, one line per question:

    {"question_id": 0, "image": "18063892_F3.jpg", "pair_id": "18063892_F3",
     "text": "What is the organ in the image?\\n<image>", "gpt4_answer": "...",
     "fig_caption": "...", "fig_label": "Fig. 3",
     "in_text_mention": [{"tokens": "...", "entities": [...]}],
     "domain": {"chest_xray": false, "mri": false, "ct_scan": false, "histology": true, "gross": true},
     "type": "conversation"}

The 50 images are not in LLaVA-Med's image-URL list; put them under `image_dir`. `gpt4_answer` is the reference
(Assistant 1): text-only GPT-4 given the caption. The image domain is the first true flag in LLaVA-Med's order
(chest_xray, mri, histology, gross, ct_scan), as its summary script groups them; `type` is `conversation` or
`detailed_description`.

Offline, the answers are scored against the reference with `vqa_metrics` (token recall, token F1, exact match;
per question type); with `evaluate.judge` set, the judge's relative score (`judge.py`) is added.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from pydantic import BaseModel, ConfigDict, Field

from llava_adapt.plugin import OutsideRootError, Skip, SourceContext, VQAItem, relative_to_root

from .files import inside, resolve_input

CHAT_FILE = "llava_med_eval_qa50_qa.jsonl"
DOMAIN_ORDER = ("chest_xray", "mri", "histology", "gross", "ct_scan")  # LLaVA-Med's summarize_gpt_review order
REQUIRED = ("question_id", "image", "text", "gpt4_answer", "fig_caption")


class ChatEvalArgs(BaseModel):
    """Arguments of the `llava_med_chat` benchmark (recipe `evaluate.args.llava_med_chat`).

    Args:
        path (`str`, defaults to `"llava_med_eval_qa50_qa.jsonl"`): the questions file, relative to the data root.
        image_dir (`str`, defaults to `"images"`): the folder of the figures, relative to the data root.
        types (`list[str]`, defaults to both): question types to keep (`conversation`, `detailed_description`).
        limit (`int | None`, defaults to `None`): keep at most this many questions (in file order).
    """

    model_config = ConfigDict(extra="forbid")

    path: str = CHAT_FILE
    image_dir: str = "images"
    types: list[str] = Field(default_factory=lambda: ["conversation", "detailed_description"])
    limit: int | None = Field(None, ge=1)


def image_domain(flags: object) -> str:
    """The first true flag of a LLaVA-Med `domain` dict in LLaVA-Med's order, or `""` when none is true."""
    if not isinstance(flags, dict):
        return ""
    return next((name for name in DOMAIN_ORDER if flags.get(name) is True), "")


def mention_texts(value: object) -> list[str]:
    """In-text mentions as strings: LLaVA-Med stores `{"tokens": str, "entities": [...]}` objects or plain strings."""
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    texts = [v.get("tokens", "") if isinstance(v, dict) else v for v in values]
    return [" ".join(str(t).split()) for t in texts if str(t).strip()]


def load(args: ChatEvalArgs, ctx: SourceContext) -> Iterator[VQAItem | Skip]:
    """Yield the visual-chat questions; malformed lines and unsafe image paths are skipped with a reason.

    Raises:
        ValueError: `path` or `image_dir` escapes the data root.
        FileNotFoundError: the questions file does not exist.
    """
    path = resolve_input(ctx.data_root, args.path, "visual-chat questions file")
    image_root = inside(ctx.data_root, args.image_dir)
    if image_root is None:
        raise OutsideRootError(f"image_dir {args.image_dir!r} is outside the data root {ctx.data_root}")
    count = 0
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"{path.name}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                yield Skip(where, "not a JSON object")
                continue
            if not isinstance(row, dict):
                yield Skip(where, "not a JSON object")
                continue
            missing = [key for key in REQUIRED if row.get(key) in (None, "")]
            if missing:
                yield Skip(where, f"missing {missing[0]}")
                continue
            category = str(row.get("type") or "conversation")
            if category not in args.types:
                continue
            image = inside(image_root, str(row["image"]))
            if image is None:
                yield Skip(where, "image path escapes the data root")
                continue
            label = str(row.get("fig_label") or "").strip()
            caption = " ".join(str(row["fig_caption"]).split())
            yield VQAItem(
                id=f"llava_med_chat-{row['question_id']}",
                image=str(relative_to_root(ctx.data_root, image)),  # inside: image_root is inside the data root
                question=str(row["text"]).replace("<image>", "").strip(),
                answer=str(row["gpt4_answer"]).strip(),
                answer_type="open",
                meta={
                    "caption": f"{label}: {caption}" if label else caption,
                    "mentions": mention_texts(row.get("in_text_mention")),
                    "category": category,
                    "domain": image_domain(row.get("domain")),
                },
            )
            count += 1
            if args.limit is not None and count >= args.limit:
                return
