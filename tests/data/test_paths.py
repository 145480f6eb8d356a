"""Paths inside a root through the folders the user linked into it; `..` and absolute paths out of it refused —
by the helper and by every loader that reads images from a data root (LLaVA setups link dataset folders in)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from llava_adapt.data.paths import relative_to_root, root_path, within
from llava_adapt.data.records import VQAItem
from llava_adapt.domain import SourceContext
from llava_adapt.domains.biomed.vqa import SlakeArgs, load_slake
from llava_adapt.domains.general.paths import input_path
from llava_adapt.domains.scienceqa import domain as scienceqa
from llava_adapt.domains.scienceqa.synthetic import build_synthetic_scienceqa
from llava_adapt.stages.instruct import InstructError, conversation_samples
from llava_adapt.stages.prepare import resolve_image


@pytest.fixture
def linked(tmp_path: Path) -> tuple[Path, Path]:
    """A data root whose `imgs` is a link to a folder elsewhere (holding `a.png`), as LLaVA setups do."""
    elsewhere, root = tmp_path / "mnt" / "dataset", tmp_path / "data"
    elsewhere.mkdir(parents=True)
    root.mkdir()
    Image.new("RGB", (4, 4), "red").save(elsewhere / "a.png")
    (root / "real").mkdir()
    Image.new("RGB", (4, 4), "blue").save(root / "real" / "b.png")
    (root / "imgs").symlink_to(elsewhere, target_is_directory=True)
    (tmp_path / "secret.png").write_bytes((elsewhere / "a.png").read_bytes())
    return root, elsewhere


def test_within_follows_links_the_user_made_and_refuses_climbing_out(linked: tuple[Path, Path]) -> None:
    root, elsewhere = linked
    assert within(root, "imgs/a.png") == root / "imgs" / "a.png"
    assert relative_to_root(root, "imgs/./a.png") == "imgs/a.png"
    assert within(root, root / "imgs" / "a.png") == root / "imgs" / "a.png"  # absolute, inside
    assert within(root, "real/../real/b.png") == root / "real" / "b.png"  # `..` that stays inside
    assert within(root, "../secret.png") is None
    assert within(root, root.parent / "secret.png") is None  # absolute, elsewhere
    assert within(root, "imgs/../../secret.png") is None
    assert within(root, "imgs/../a.png") is None  # `..` through a link is resolved: it lands outside
    assert within(root, elsewhere / "a.png") is None  # a link target named directly is not inside the root


def test_a_root_that_is_itself_a_link(tmp_path: Path) -> None:
    real = tmp_path / "real_root"
    (real / "x").mkdir(parents=True)
    (tmp_path / "root").symlink_to(real, target_is_directory=True)
    link = tmp_path / "root"
    assert within(link, real / "x" / "y.png") == link / "x" / "y.png"  # named through the root's target
    assert relative_to_root(link, "x/y.png") == "x/y.png" and root_path(link) == link


def test_prepare_and_instruct_accept_a_linked_folder(linked: tuple[Path, Path], tmp_path: Path) -> None:
    root, _ = linked
    out = tmp_path / "out"
    out.mkdir()
    assert resolve_image("imgs/a.png", out, root) == (str(root / "imgs" / "a.png"), None)
    assert resolve_image("../secret.png", out, root) == (None, "image path escapes the data root")
    assert resolve_image(str(tmp_path / "secret.png"), out, root) == (None, "image path escapes the data root")
    conversations = tmp_path / "chat.json"
    turns = [{"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": "Red."}]
    conversations.write_text(json.dumps([{"id": "1", "image": "imgs/a.png", "conversations": turns}]))
    (sample,) = conversation_samples(conversations, root)
    assert sample.image == str(root / "imgs" / "a.png")
    conversations.write_text(json.dumps([{"id": "2", "image": "imgs/../../secret.png", "conversations": turns}]))
    with pytest.raises(InstructError, match=r"image path 'imgs/\.\./\.\./secret\.png' escapes the image folder"):
        list(conversation_samples(conversations, root))


def test_domain_loaders_accept_a_linked_folder(linked: tuple[Path, Path], tmp_path: Path) -> None:
    root, elsewhere = linked
    ctx = SourceContext(data_root=root, output_dir=tmp_path / "out")
    assert input_path(root, "imgs", "COCO image folder", kind="folder") == root / "imgs"
    with pytest.raises(ValueError, match="'../mnt' is outside the data root"):
        input_path(root, "../mnt", "COCO image folder", kind="folder")

    row = {"qid": 1, "img_name": "a.png", "question": "Is it red?", "answer": "yes", "answer_type": "CLOSED"}
    (elsewhere / "slake" / "imgs").mkdir(parents=True)
    (elsewhere / "slake" / "imgs" / "a.png").write_bytes((elsewhere / "a.png").read_bytes())
    rows = [row, {**row, "qid": 2, "img_name": "../../../../secret.png"}]
    (elsewhere / "slake" / "test.json").write_text(json.dumps(rows))
    items = list(load_slake(SlakeArgs(path="imgs/slake"), ctx))  # the SLAKE folder is reached through the link
    assert items[0].image == "imgs/slake/imgs/a.png" and items[1].reason == "image path escapes the data root"

    build_synthetic_scienceqa(elsewhere / "sqa", n_train=2, n_val=2, n_test=4, seed=0)
    bench = scienceqa.benchmarks["scienceqa"]
    questions = [q for q in bench.load(bench.args(path="imgs/sqa"), ctx) if isinstance(q, VQAItem)]
    pictured = [q for q in questions if q.meta["has_image"]]
    assert len(questions) == 4 and pictured and all(q.image.startswith("imgs/sqa/images/test/") for q in pictured)
    assert all((root / q.image).is_file() for q in pictured)
