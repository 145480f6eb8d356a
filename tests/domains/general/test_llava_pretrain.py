"""The `llava_pretrain` source: LCS-558K's JSON, the same records as JSONL, and its meta file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llava_adapt.data.jsonl import RecordFileError
from llava_adapt.data.records import CaptionRecord, Skip
from llava_adapt.domain import SourceContext
from llava_adapt.domains.general import domain
from llava_adapt.domains.general.llava_pretrain import LlavaPretrainArgs
from llava_adapt.plugin import DataError

from .real_format import LCS_BAD, write_lcs

IMAGES = "LLaVA-Pretrain/images"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "playground"
    write_lcs(root)
    return root


def load(root: Path, **args) -> list[CaptionRecord | Skip]:
    ctx = SourceContext(data_root=root, output_dir=root.parent / "out", seed=0)
    return list(domain.sources["llava_pretrain"].load(LlavaPretrainArgs(**args), ctx))


EXPECTED = [
    CaptionRecord(
        id="004539375",
        image=f"{IMAGES}/00453/004539375.jpg",
        caption="select luxury furniture 3 - inch gel memory foam mattress topper",  # the gpt turn, stripped
    ),
    CaptionRecord(
        id="002239345", image=f"{IMAGES}/00223/002239345.jpg", caption="a grey watch with an army style strap"
    ),
]


@pytest.mark.parametrize("name", ["blip_laion_cc_sbu_558k.json", "blip_laion_cc_sbu_558k.jsonl"])
def test_json_and_jsonl_give_the_caption_of_each_pair_and_skip_the_rest(root: Path, name: str) -> None:
    items = load(root, path=f"LLaVA-Pretrain/{name}", image_dir=IMAGES)
    assert [i for i in items if isinstance(i, CaptionRecord)] == EXPECTED
    assert [(s.id, s.reason) for s in items if isinstance(s, Skip)] == [(r["id"], why) for r, why in LCS_BAD]


def test_the_meta_file_gives_the_blip_captions(root: Path) -> None:
    items = load(root, path="LLaVA-Pretrain/blip_laion_cc_sbu_558k_meta.json", image_dir=IMAGES)
    assert items == EXPECTED


def test_defaults_are_lcs_558k_names_and_limit_counts_records(root: Path) -> None:
    folder = root / "LLaVA-Pretrain"  # LLaVA's own layout: the JSON next to images/
    assert [r.image for r in load(folder) if isinstance(r, CaptionRecord)] == [
        "images/00453/004539375.jpg",
        "images/00223/002239345.jpg",
    ]
    limited = load(root, path="LLaVA-Pretrain/blip_laion_cc_sbu_558k.jsonl", image_dir=IMAGES, limit=1)
    assert [r.id for r in limited if isinstance(r, CaptionRecord)] == ["004539375"]
    assert len(limited) == 1  # it stops at the limit, before the skipped records that follow


def test_missing_or_wrong_files_are_clear_errors(root: Path) -> None:
    where = re.escape(str(root))
    with pytest.raises(FileNotFoundError, match=rf"558k.json is not an existing file \(data root {where}\)"):
        load(root)
    with pytest.raises(FileNotFoundError, match="image folder .*images is not an existing folder"):
        load(root, path="LLaVA-Pretrain/blip_laion_cc_sbu_558k.json")
    with pytest.raises(ValueError, match="'../x.json' is outside the data root"):
        load(root, path="../x.json", image_dir=IMAGES)
    (root / "pairs.csv").write_text("image,caption\n")
    with pytest.raises(DataError, match=r"unsupported file type '.csv'; LLaVA pretraining data is .json or .jsonl"):
        load(root, path="pairs.csv", image_dir=IMAGES)
    jsonl = root / "LLaVA-Pretrain" / "blip_laion_cc_sbu_558k.jsonl"
    jsonl.write_text(jsonl.read_text() + '{"id": "cut off", "image": \n')
    with pytest.raises(RecordFileError, match=r"blip_laion_cc_sbu_558k.jsonl:8: not valid JSON"):
        load(root, path="LLaVA-Pretrain/blip_laion_cc_sbu_558k.jsonl", image_dir=IMAGES)
