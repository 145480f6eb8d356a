"""Source `synthetic` and benchmark `synthetic_vqa`: the offline data of the biomed `tiny` preset.

The source draws `n_images` radiology-like images (`synthetic.py`) with captions and labels, and can also pass
real DICOM files that pydicom ships (`dicom_test_files`, e.g. `CT_small.dcm`) through the `dicom` source's
converter, so the tiny run exercises decoding, windowing and de-identification on files nobody here wrote.

The benchmark draws a separate, held-out set of images (its own random stream, `eval` ids) and asks closed
questions (lesion yes/no, side left/right, modality X-ray/CT/MRI) and open ones (body part, main finding), scored
by `metrics.vqa_metrics` with per-kind entries (`closed_accuracy/lesion`, ...). Its `train` split (for the
`finetune` stage) draws yet another set from a third random stream (`vqa-train` ids, `synthetic/vqa_train/`), so
the three image sets are disjoint.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydicom.data import get_testdata_file, get_testdata_files

from llava_adapt.plugin import CaptionRecord, Skip, SourceContext, VQAItem

from .dicom_source import DicomSourceArgs, convert_file
from .files import save_png
from .questions import CLOSED_KINDS, MODALITY_CHOICES, QUESTIONS, QuestionKind, short_answer
from .synthetic import MODALITIES, Scene, caption, draw, sample_scene

SyntheticModality = Literal["x-ray", "ct", "mri"]
MODALITY_NAMES = {"x-ray": "X-ray", "ct": "CT", "mri": "MRI"}


class SyntheticSourceArgs(BaseModel):
    """Arguments of the `synthetic` source.

    Args:
        n_images (`int`, defaults to `240`): how many synthetic images to draw.
        image_size (`int`, defaults to `128`): their side in pixels.
        lesion_fraction (`float`, defaults to `0.5`): the share of images with a lesion.
        modalities (`list["x-ray" | "ct" | "mri"]`, defaults to all three): the modalities to draw.
        dicom_test_files (`list[str]`, defaults to `[]`): names or glob patterns of pydicom's test files
            (`pydicom.data`, plus `pydicom-data` when installed) to convert and add; missing ones are skipped.
        dicom_window (`str`, defaults to `"file"`): the window used for them (see the `dicom` source).
        asked_fraction (`dict["modality" | "body_part", float]`, defaults to `{}`): per attribute, the share of
            the drawn images whose labels carry it, so that the offline generator asks about it in their
            conversations; the caption always states it. `{modality: 0.1, body_part: 0.1}` gives what LLaVA-Med's
            alignment is for: a visual concept every caption (stage 1) names and few conversations (stage 2) ask
            about. Attributes not listed are in every record's labels.
    """

    model_config = ConfigDict(extra="forbid")

    n_images: int = Field(240, ge=1)
    image_size: int = Field(128, ge=32, le=1024)
    lesion_fraction: float = Field(0.5, ge=0.0, le=1.0)
    modalities: list[SyntheticModality] = Field(default_factory=lambda: list(MODALITIES))
    dicom_test_files: list[str] = Field(default_factory=list)
    dicom_window: str = "file"
    asked_fraction: dict[Literal["modality", "body_part"], Annotated[float, Field(ge=0.0, le=1.0)]] = Field(
        default_factory=dict
    )


class SyntheticVQAArgs(BaseModel):
    """Arguments of the `synthetic_vqa` benchmark.

    Args:
        n_images (`int`, defaults to `60`): how many held-out images to draw.
        image_size (`int`, defaults to `128`): their side in pixels.
        lesion_fraction (`float`, defaults to `0.5`): the share of images with a lesion.
        modalities (`list["x-ray" | "ct" | "mri"]`, defaults to all three): the modalities to draw.
        questions (`list[str]`, defaults to all): question kinds: `lesion`, `side`, `modality` (closed),
            `body_part`, `finding` (open). `side` is asked only about images with a lesion.
        limit (`int | None`, defaults to `None`): keep at most this many questions.
        split (`"test" | "train"`, defaults to `"test"`): `test` = the held-out evaluation images; `train` = another
            set drawn from its own random stream, for the `finetune` stage.
    """

    model_config = ConfigDict(extra="forbid")

    n_images: int = Field(60, ge=1)
    image_size: int = Field(128, ge=32, le=1024)
    lesion_fraction: float = Field(0.5, ge=0.0, le=1.0)
    modalities: list[SyntheticModality] = Field(default_factory=lambda: list(MODALITIES))
    questions: list[QuestionKind] = Field(
        default_factory=lambda: ["lesion", "side", "modality", "body_part", "finding"]
    )
    limit: int | None = Field(None, ge=1)
    split: Literal["test", "train"] = "test"


# Per split: the random stream (suffixed with the recipe's seed), the image folder and the id prefix. The test
# split's are those the benchmark has always used; none of them is the `synthetic` source's (`biomed-synthetic-train`).
SPLITS = {"test": ("biomed-synthetic-eval", "synthetic/eval", "synthetic-eval"),
          "train": ("biomed-synthetic-vqa-train", "synthetic/vqa_train", "synthetic-vqa-train")}  # fmt: skip


def scene_labels(scene: Scene) -> dict[str, str]:
    """The labels of a synthetic scene (what the offline generator and the benchmark ask about)."""
    labels = {"modality": scene.modality, "body_part": scene.body_part, "lesion": "yes" if scene.lesion else "no"}
    if scene.lesion:
        labels["side"] = str(scene.side)
        labels["size"] = scene.size
    return labels


def load_source(args: SyntheticSourceArgs, ctx: SourceContext) -> Iterator[CaptionRecord | Skip]:
    """Draw the synthetic training images, then convert the requested pydicom test files."""
    rng = random.Random(f"biomed-synthetic-train-{ctx.seed}")
    asked = random.Random(f"biomed-synthetic-asked-{ctx.seed}")  # its own stream: the images stay the same
    for index in range(args.n_images):
        scene = sample_scene(rng, tuple(args.modalities), args.lesion_fraction)
        relative = f"synthetic/train/{index:05d}.png"
        save_png(draw(scene, args.image_size, rng), ctx.output_dir / relative)
        labels = scene_labels(scene)
        for key, fraction in sorted(args.asked_fraction.items()):
            if asked.random() >= fraction:
                del labels[key]
        context = {"modality": MODALITY_NAMES[scene.modality], "body_part": scene.body_part}
        yield CaptionRecord(f"synthetic-{index:05d}", relative, caption(scene, rng), context, labels)
    if args.dicom_test_files:
        dicom_args = DicomSourceArgs(missing_report="describe", window=args.dicom_window, max_size=args.image_size * 4)
        for name, path in _testdata_files(args.dicom_test_files):
            if path is None:
                yield Skip(name, "pydicom test file not available (pip install pydicom-data)")
                continue
            yield from convert_file(path, f"pydicom/{name}", None, {}, dicom_args, ctx)


def count_source(args: SyntheticSourceArgs, ctx: SourceContext) -> int | None:
    """The records `load_source` yields for `args`: `n_images` drawn plus one per named DICOM test file (its middle
    frame); `None` when a name is a glob pattern (how many files it matches depends on what is installed)."""
    if any(ch in name for name in args.dicom_test_files for ch in "*?["):
        return None
    return args.n_images + len(args.dicom_test_files)


def load_benchmark(args: SyntheticVQAArgs, ctx: SourceContext) -> Iterator[VQAItem]:
    """Draw the images of `args.split` and yield their questions."""
    stream, folder, prefix = SPLITS[args.split]
    rng = random.Random(f"{stream}-{ctx.seed}")
    count = 0
    for index in range(args.n_images):
        scene = sample_scene(rng, tuple(args.modalities), args.lesion_fraction)
        relative = f"{folder}/{index:04d}.png"
        save_png(draw(scene, args.image_size, rng), ctx.output_dir / relative)
        labels = scene_labels(scene)
        for kind in args.questions:
            if kind == "side" and not scene.lesion:
                continue
            closed = kind in CLOSED_KINDS
            choices = ["yes", "no"] if kind == "lesion" else ["left", "right"] if kind == "side" else []
            if kind == "modality":
                choices = list(MODALITY_CHOICES)
            yield VQAItem(
                id=f"{prefix}-{index:04d}-{kind}",
                image=relative,
                question=QUESTIONS[kind][0],
                answer=short_answer(kind, labels),
                answer_type="closed" if closed else "open",
                choices=choices,
                meta={"kind": kind, "modality": scene.modality},
            )
            count += 1
            if args.limit is not None and count >= args.limit:
                return


def _testdata_files(names: list[str]) -> Iterator[tuple[str, Path | None]]:

    seen: set[str] = set()
    for name in names:
        if any(ch in name for ch in "*?["):
            paths = sorted(get_testdata_files(name))
        else:
            found = get_testdata_file(name, download=False)
            paths = [found] if isinstance(found, str) else []
        if not paths:
            yield name, None
        for path in paths:
            if path not in seen:
                seen.add(path)
                yield Path(path).name, Path(path)
