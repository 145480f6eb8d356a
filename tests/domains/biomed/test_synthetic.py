"""The tiny preset's data: synthetic images are deterministic, held out, and their answers visible at 64 px."""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.linear_model import LogisticRegression

from llava_adapt.data.records import CaptionRecord, Skip
from llava_adapt.domain import SourceContext
from llava_adapt.domains.biomed import domain
from llava_adapt.domains.biomed.synthetic import draw, sample_scene
from llava_adapt.domains.biomed.tiny import SyntheticSourceArgs, SyntheticVQAArgs, load_benchmark, load_source

from .helpers import phi_values


def thumbnails(n: int, seed: int, side: int = 16) -> tuple[np.ndarray, list]:
    rng = random.Random(seed)
    scenes = [sample_scene(rng) for _ in range(n)]
    pixels = [np.asarray(draw(s, 128, rng).convert("L").resize((side, side)), dtype=np.float32) / 255 for s in scenes]
    return np.stack(pixels).reshape(n, -1), scenes


def test_answers_are_visible_at_low_resolution():
    """A linear model on 16x16 thumbnails separates modality, lesion and side: the signal is global and salient."""
    x_train, train = thumbnails(240, 1)
    x_test, test = thumbnails(120, 2)
    for target in ("modality", "lesion", "side"):
        keep_train = [i for i, s in enumerate(train) if target != "side" or s.lesion]
        keep_test = [i for i, s in enumerate(test) if target != "side" or s.lesion]
        y_train = [str(getattr(train[i], target)) for i in keep_train]
        y_test = [str(getattr(test[i], target)) for i in keep_test]
        model = LogisticRegression(max_iter=2000).fit(x_train[keep_train], y_train)
        assert model.score(x_test[keep_test], y_test) >= 0.95, target


def test_lesion_is_a_hot_spot_on_its_side():
    rng = random.Random(3)
    for _ in range(60):
        scene = sample_scene(rng, lesion_fraction=1.0)
        pixels = np.asarray(draw(scene, 128, rng).resize((64, 64)), dtype=int)
        hot = (pixels[:, :, 0] - pixels[:, :, 2]) > 120  # orange: red far above blue; the anatomy is grey
        left, right = hot[:, :32].sum(), hot[:, 32:].sum()
        assert (left > 10 * right) if scene.side == "left" else (right > 10 * left)
        assert hot.sum() > 16 * 16  # more than a whole 16-px patch at 64 px, spread over about 2 x 2 patches


def test_source_is_deterministic_and_the_benchmark_held_out(ctx: SourceContext, tmp_path):
    args = SyntheticSourceArgs(n_images=24, image_size=64)
    first = list(load_source(args, ctx))
    hashes = {hashlib.sha1((ctx.output_dir / r.image).read_bytes()).hexdigest() for r in first}
    again_ctx = SourceContext(data_root=ctx.data_root, output_dir=tmp_path / "again", seed=0)
    again = list(load_source(args, again_ctx))
    assert [r.to_dict() for r in again] == [r.to_dict() for r in first]
    assert {hashlib.sha1((again_ctx.output_dir / r.image).read_bytes()).hexdigest() for r in again} == hashes
    other = list(load_source(args, SourceContext(ctx.data_root, tmp_path / "seed1", seed=1)))
    assert [r.labels for r in other] != [r.labels for r in first]
    items = list(load_benchmark(SyntheticVQAArgs(n_images=24, image_size=64), ctx))
    eval_hashes = {hashlib.sha1((ctx.output_dir / i.image).read_bytes()).hexdigest() for i in items}
    assert not eval_hashes & hashes


def test_records_carry_caption_context_and_labels(ctx: SourceContext):
    records = list(load_source(SyntheticSourceArgs(n_images=30, image_size=64), ctx))
    assert all(isinstance(r, CaptionRecord) for r in records)
    assert Counter(r.labels["modality"] for r in records).keys() == {"x-ray", "ct", "mri"}
    for record in records:
        labels = record.labels
        assert Image.open(ctx.output_dir / record.image).size == (64, 64)
        assert labels["body_part"] in record.caption
        if labels["lesion"] == "yes":
            assert f"{labels['side']} " in record.caption and "lesion" in record.caption
        else:
            assert "no " in record.caption and "side" not in labels


def test_benchmark_questions(ctx: SourceContext):
    items = list(load_benchmark(SyntheticVQAArgs(n_images=40, image_size=64), ctx))
    kinds = Counter(i.meta["kind"] for i in items)
    lesions = kinds["side"]
    assert kinds["lesion"] == kinds["modality"] == kinds["body_part"] == kinds["finding"] == 40 and 0 < lesions < 40
    assert len({i.id for i in items}) == len(items)
    for item in items:
        if item.answer_type == "closed":
            assert item.answer in item.choices
        assert (ctx.output_dir / item.image).is_file()
    assert len(list(load_benchmark(SyntheticVQAArgs(n_images=40, image_size=64, limit=7), ctx))) == 7
    only = list(load_benchmark(SyntheticVQAArgs(n_images=5, image_size=64, questions=["modality"]), ctx))
    assert [i.choices for i in only] == [["x-ray", "ct", "mri"]] * 5


def test_benchmark_scores_right_and_wrong_answers(ctx: SourceContext):
    items = list(load_benchmark(SyntheticVQAArgs(n_images=20, image_size=64, questions=["lesion", "side"]), ctx))
    flip = {"yes": "No, there is none.", "no": "Yes, there is.", "left": "On the right.", "right": "On the left."}
    right = domain.benchmarks["synthetic"].metrics(items, [f"{i.answer.capitalize()}." for i in items])
    wrong = domain.benchmarks["synthetic"].metrics(items, [flip[i.answer] for i in items])
    assert right["closed_accuracy"] == 1.0 and wrong["closed_accuracy"] == 0.0
    assert wrong["closed_accuracy/side"] == 0.0 and right["closed_accuracy/lesion"] == 1.0


def test_pydicom_test_files_pass_through_the_dicom_converter(ctx: SourceContext):
    names = ["CT_small.dcm", "MR_small.dcm", "emri_small.dcm", "MR_truncated.dcm", "no_such_file.dcm"]
    out = list(load_source(SyntheticSourceArgs(n_images=1, image_size=64, dicom_test_files=names), ctx))
    records = [r for r in out if isinstance(r, CaptionRecord)]
    skips = Counter(s.reason for s in out if isinstance(s, Skip))
    assert [r.caption for r in records[1:]] == ["A CT image.", "An MRI image.", "An MRI image of the head."]
    assert [r.labels["modality"] for r in records[1:]] == ["ct", "mri", "mri"]
    assert skips == {"truncated or corrupt DICOM": 1, "pydicom test file not available (pip install pydicom-data)": 1}
    from pydicom.data import get_testdata_file

    phi = phi_values(get_testdata_file("CT_small.dcm")) | phi_values(get_testdata_file("MR_small.dcm"))
    text = repr([r.to_dict() for r in records])
    assert phi and not any(value in text for value in phi)


def test_the_benchmark_train_split_is_disjoint_from_its_test_split_and_the_source(ctx: SourceContext):
    """`split: train` (for `finetune`) draws its own images; the test split is what it always was."""

    def hashes(folder, images) -> set[str]:
        return {hashlib.sha1((folder / image).read_bytes()).hexdigest() for image in images}

    records = load_source(SyntheticSourceArgs(n_images=40, image_size=64), ctx)
    source = hashes(ctx.output_dir, [r.image for r in records])
    test = list(load_benchmark(SyntheticVQAArgs(n_images=40, image_size=64), ctx))
    train = list(load_benchmark(SyntheticVQAArgs(n_images=40, image_size=64, split="train"), ctx))
    test_images, train_images = {i.image for i in test}, {i.image for i in train}
    assert len(train_images) == len(test_images) == 40
    assert {Path(i).parent.as_posix() for i in test_images} == {"synthetic/eval"}  # unchanged (integration numbers)
    assert {Path(i).parent.as_posix() for i in train_images} == {"synthetic/vqa_train"}
    assert all(i.id.startswith("synthetic-eval-") for i in test)
    assert all(i.id.startswith("synthetic-vqa-train-") for i in train)
    test_hashes, train_hashes = hashes(ctx.output_dir, test_images), hashes(ctx.output_dir, train_images)
    assert len(train_hashes) == 40 and not train_hashes & test_hashes and not train_hashes & source
    # the test split draws from the stream it always used: the same scenes as a fresh `biomed-synthetic-eval` stream
    rng = random.Random(f"biomed-synthetic-eval-{ctx.seed}")
    scenes = []
    for _ in range(40):
        scenes.append(sample_scene(rng))
        draw(scenes[-1], 64, rng)
    lesion = [i.answer for i in test if i.meta["kind"] == "lesion"]
    assert lesion == ["yes" if s.lesion else "no" for s in scenes]
    assert [i.answer for i in train if i.meta["kind"] == "lesion"] != lesion


def test_asked_fraction_keeps_an_attribute_in_every_caption_and_few_conversations(ctx: SourceContext, tmp_path):
    """`asked_fraction` drops the attribute from most records' labels only: images and captions stay as they were,
    and the offline generator asks about it only where the label is kept (stage 1 names it, stage 2 rarely)."""
    from llava_adapt.domains.biomed.offline import offline_generator
    from llava_adapt.domains.biomed.questions import QUESTIONS

    every = list(load_source(SyntheticSourceArgs(n_images=60, image_size=32), ctx))
    rare_args = SyntheticSourceArgs(n_images=60, image_size=32, asked_fraction={"modality": 0.15, "body_part": 0.15})
    rare = list(load_source(rare_args, SourceContext(ctx.data_root, tmp_path / "rare", seed=0)))
    assert [(r.image, r.caption) for r in rare] == [(r.image, r.caption) for r in every]
    assert all("modality" in r.labels and "body_part" in r.labels for r in every)
    kept = [r for r in rare if "modality" in r.labels]
    assert 2 <= len(kept) <= 20 and 2 <= sum("body_part" in r.labels for r in rare) <= 20
    asked = set(QUESTIONS["modality"]) | set(QUESTIONS["body_part"])
    for record in rare:
        rng = random.Random(record.id)
        questions = [t["value"].removeprefix("<image>\n") for t in offline_generator(record, "conversation", rng)]
        if "modality" not in record.labels and "body_part" not in record.labels:
            assert not asked & set(questions), record.id
        assert any(word in record.caption for word in ("X-ray", "CT", "MRI"))
