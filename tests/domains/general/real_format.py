"""Small files in the formats people download for the `general` domain: COCO 2017 annotations and LCS-558K.

Field names are COCO's and LLaVA's own; every image is a real JPEG except where a test wants it missing or corrupt.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

CAPTIONS_139 = [
    "A woman stands in the dining area at the table.",
    "A room with chairs, a table, and a woman in it.",
    "A woman standing in a kitchen by a window\n",  # COCO captions carry stray newlines and spaces
    "A person standing at a table in a room.",
    "A living  area with a  television and a table",
]
CLEAN_139 = [" ".join(c.split()) for c in CAPTIONS_139]
# 640 x 480: x1 = 435.84 / 640, y1 = 116.16 / 480, x2 = (435.84 + 59.52) / 640, y2 = (116.16 + 216.96) / 480.
PERSON_BBOX = [435.84, 116.16, 59.52, 216.96]
PERSON_LINE = "person: [0.681, 0.242, 0.774, 0.694]"
DOG_BBOX = [0, 300, 96, 200]  # reaches y = 500 > 480: clamped to 1
DOG_LINE = "dog: [0.000, 0.625, 0.150, 1.000]"
CAR_LINE = "car: [0.100, 0.100, 0.600, 0.600]"  # [32, 24, 160, 120] in a 320 x 240 image

# Image id -> why the `coco` source skips it (with boxes); ids not listed here become records.
COCO_SKIPPED_IMAGES = {
    632: "no captions",
    724: "image path escapes the data root",
    776: "malformed box annotation",
    885: "unknown category id",
    1000: "missing image size",
}
COCO_RECORDS = ["139", "285", "1296", "1503", "1761"]  # 1503's file is missing, 1761's is corrupt: prepare's job


def _jpeg(path: Path, size: tuple[int, int], colour: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, format="JPEG")


def _image(image_id: int, width: int | None = 64, height: int | None = 48, name: str | None = None) -> dict:
    entry = {"license": 3, "file_name": name or f"{image_id:012d}.jpg", "coco_url": "http://images.cocodataset.org/x",
             "id": image_id, "date_captured": "2013-11-14 11:18:45"}  # fmt: skip
    if width is not None:
        entry |= {"width": width, "height": height}
    return entry


def write_coco(root: Path) -> dict[str, Path]:
    """Write `annotations/captions_train2017.json`, `annotations/instances_train2017.json` and `train2017/`."""
    images = [
        _image(139, 640, 480),
        _image(285, 320, 240),
        _image(632),
        _image(724, name="../../outside.jpg"),
        {"id": "776x", "file_name": "bad.jpg"},  # a string id: a malformed image entry
        _image(776),
        _image(885),
        _image(1000, width=None),
        _image(1296),
        _image(1503),
        _image(1761),
    ]
    captions = [{"id": 1000 + i, "image_id": 139, "caption": c} for i, c in enumerate(CAPTIONS_139)]
    captions += [
        {"id": 2001, "image_id": 285, "caption": "A big brown bear sitting in the grass."},
        {"id": 2002, "image_id": 285, "caption": "A brown bear in a field."},
        {"id": 2003, "image_id": 999, "caption": "An image the file does not list."},
        {"id": 2004, "image_id": 139},  # no caption: malformed
        {"id": 2005, "image_id": 632, "caption": "   "},  # blank: image 632 ends up without captions
    ]
    for image_id in (724, 776, 885, 1000, 1296, 1503, 1761):
        captions.append({"id": 3000 + image_id, "image_id": image_id, "caption": f"Photo number {image_id}."})
    categories = [
        {"supercategory": "person", "id": 1, "name": "person"},
        {"supercategory": "vehicle", "id": 3, "name": "car"},
        {"supercategory": "animal", "id": 18, "name": "dog"},
    ]
    boxes = [
        {"id": 1, "image_id": 139, "category_id": 1, "bbox": PERSON_BBOX, "area": 1.0, "iscrowd": 0,
         "segmentation": [[435.84, 116.16, 495.36, 333.12]]},
        {"id": 2, "image_id": 139, "category_id": 18, "bbox": DOG_BBOX, "area": 1.0, "iscrowd": 0},
        {"id": 3, "image_id": 285, "category_id": 3, "bbox": [32, 24, 160, 120], "area": 1.0, "iscrowd": 0},
        {"id": 4, "image_id": 776, "category_id": 1, "bbox": [1, 2, 3], "area": 1.0, "iscrowd": 0},
        {"id": 5, "image_id": 885, "category_id": 99, "bbox": [1, 2, 3, 4], "area": 1.0, "iscrowd": 0},
        {"id": 6, "image_id": 1000, "category_id": 1, "bbox": [1, 2, 3, 4], "area": 1.0, "iscrowd": 0},
        {"id": 7, "image_id": 999, "category_id": 1, "bbox": [1, 2, 3, 4], "area": 1.0, "iscrowd": 0},
    ]  # fmt: skip
    info = {"description": "COCO 2017 Dataset", "year": 2017}
    annotations = root / "annotations"
    annotations.mkdir(parents=True)
    paths = {kind: annotations / f"{kind}_train2017.json" for kind in ("captions", "instances")}
    paths["captions"].write_text(json.dumps({"info": info, "licenses": [], "images": images, "annotations": captions}))
    paths["instances"].write_text(
        json.dumps({"info": info, "licenses": [], "images": images, "annotations": boxes, "categories": categories})
    )
    for entry in images:
        if isinstance(entry["id"], int) and entry["id"] not in (724, 1503):
            _jpeg(root / "train2017" / entry["file_name"], (entry.get("width", 64), entry.get("height", 48)), "teal")
    (root / "train2017" / f"{1761:012d}.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a whole JPEG")
    _jpeg(root.parent / "outside.jpg", (8, 8), "red")
    return paths


LCS_GOOD = [
    {
        "id": "004539375",
        "image": "00453/004539375.jpg",
        "conversations": [
            {"from": "human", "value": "Render a clear and concise summary of the photo.\n<image>"},
            {"from": "gpt", "value": "select luxury furniture 3 - inch gel memory foam mattress topper "},
        ],
    },
    {
        "id": "002239345",
        "image": "00223/002239345.jpg",
        "conversations": [
            {"from": "human", "value": "<image>\nWrite a terse but informative summary of the picture."},
            {"from": "gpt", "value": "a grey watch with an army style strap"},
        ],
    },
]
LCS_BAD = [  # (record, reason the source skips it for)
    (
        {"id": "escape", "image": "../../../outside.jpg", "conversations": LCS_GOOD[1]["conversations"]},
        "image path escapes the data root",
    ),
    (
        {"id": "gpt-first", "image": "00000/000000001.jpg",
         "conversations": [{"from": "gpt", "value": "a caption"}, {"from": "human", "value": "<image>"}]},
        "malformed conversation",
    ),
    (
        {"id": "two-rounds", "image": "00000/000000002.jpg",
         "conversations": LCS_GOOD[1]["conversations"] + [{"from": "human", "value": "More?"},
                                                          {"from": "gpt", "value": "No."}]},
        "not a caption pair",
    ),
    (
        {"id": "text-only", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]},
        "no image",
    ),
    ({"id": "no-caption", "image": "00000/000000003.jpg"}, "no caption"),
]  # fmt: skip
LCS_META = [  # blip_laion_cc_sbu_558k_meta.json
    {"id": "004539375", "image": "00453/004539375.jpg", "url": "http://example.com/a.jpg",
     "blip_caption": "select luxury furniture 3 - inch gel memory foam mattress topper"},
    {"id": "002239345", "image": "00223/002239345.jpg", "url": "http://example.com/b.jpg",
     "blip_caption": "a grey watch with an army style strap"},
]  # fmt: skip


def write_lcs(root: Path) -> dict[str, Path]:
    """Write LCS-558K-style files under `root/LLaVA-Pretrain/`: the JSON, the same as JSONL, the meta JSON, images."""
    folder = root / "LLaVA-Pretrain"
    for record in LCS_GOOD:
        _jpeg(folder / "images" / record["image"], (32, 24), "orange")
    _jpeg(root.parent / "outside.jpg", (8, 8), "red")
    rows = LCS_GOOD[:1] + [record for record, _ in LCS_BAD] + LCS_GOOD[1:]
    paths = {
        "json": folder / "blip_laion_cc_sbu_558k.json",
        "jsonl": folder / "blip_laion_cc_sbu_558k.jsonl",
        "meta": folder / "blip_laion_cc_sbu_558k_meta.json",
    }
    paths["json"].write_text(json.dumps(rows))
    paths["jsonl"].write_text("".join(json.dumps(row) + "\n" for row in rows))
    paths["meta"].write_text(json.dumps(LCS_META))
    return paths
