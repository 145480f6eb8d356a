"""Write a small visual-chat evaluation set in LLaVA-Med's `llava_med_eval_qa50_qa.jsonl` layout."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

MENTION = {"tokens": "Inflammatory cells were not found ( Fig. 3 ) .", "entities": [{"type": "figure"}]}
HISTOLOGY = {"chest_xray": False, "mri": False, "ct_scan": False, "histology": True, "gross": True}
CT = {"chest_xray": False, "mri": False, "ct_scan": True, "histology": False, "gross": False}


def chat_rows() -> list[dict]:
    """Three well-formed questions on two figures (field names and shapes as released)."""
    fig3 = {"image": "18063892_F3.jpg", "pair_id": "18063892_F3", "fig_label": "Fig. 3", "domain": HISTOLOGY,
            "fig_caption": "A cystic wall lined by a single layer of low cuboidal epithelium. (H & E stain)",
            "in_text_mention": [MENTION]}  # fmt: skip
    spect = {"image": "18652673_F3.jpg", "pair_id": "18652673_F3", "fig_label": "Figure 3", "domain": CT,
             "fig_caption": "SPECT images from a depressed patient showing hypofrontality.",
             "in_text_mention": ["Decreased cerebral blood flow in the PFC ( figure 3 ) ."]}  # fmt: skip
    return [
        {"question_id": 0, **fig3, "type": "conversation", "text": "What is the organ in the image?\n<image>",
         "gpt4_answer": "The organ in the image is the conjunctiva."},
        {"question_id": 1, **fig3, "type": "detailed_description", "text": "<image>\nDescribe the image in detail.",
         "gpt4_answer": "A histology section of a cyst lined by cuboidal epithelium."},
        {"question_id": 2, **spect, "type": "conversation", "text": "What imaging technique was used?\n<image>",
         "gpt4_answer": "Single photon emission computed tomography (SPECT)."},
    ]  # fmt: skip


def write_chat_eval(root: Path, extra_lines: tuple[str, ...] = ()) -> Path:
    """Write `llava_med_eval_qa50_qa.jsonl` (+ `extra_lines` verbatim) and the two figures under `root/images/`."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    for name, colour in (("18063892_F3.jpg", (200, 120, 150)), ("18652673_F3.jpg", (40, 40, 40))):
        Image.new("RGB", (48, 40), colour).save(root / "images" / name, format="JPEG")
    lines = [json.dumps(row) for row in chat_rows()] + list(extra_lines)
    path = root / "llava_med_eval_qa50_qa.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
