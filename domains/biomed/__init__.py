"""The `biomed` domain: LLaVA-Med's recipe — biomedical figure captions, DICOM studies and medical VQA.

Sources:

- `figures`: figure–caption records as LLaVA-Med / PMC-OA publish them (`figures.py`);
- `dicom`: a folder of DICOM studies (+ reports) → de-identified RGB PNGs (`dicom_source.py`, `dicom.py`);
- `synthetic`: procedurally drawn radiology-like images (+ pydicom's test files) for the offline `tiny` preset.

Benchmarks: `vqa_rad`, `slake`, `path_vqa` (local files, `vqa.py`) and `synthetic` (held-out synthetic images),
all scored by `metrics.vqa_metrics` (closed accuracy counting wrong yes/no answers as wrong, open recall, exact
match, token F1; VQA-RAD, SLAKE and PathVQA also say how many answer types a rule had to guess, `answer_types.py`),
and `llava_med_chat` (LLaVA-Med's visual-chat questions, `chat.py`), scored offline against
GPT-4's reference answers and, with `evaluate.judge`, by a GPT-4-class judge (`judge.py`). See README.md.
"""

from __future__ import annotations

from pathlib import Path

from llava_adapt.plugin import PATIENT_IMAGES, Benchmark, Domain, Source

from . import chat, dicom_source, figures, tiny, vqa
from .answer_types import TYPED_VQA_SPECS, answer_type_notes, typed_vqa_metrics
from .judge import JUDGE
from .metrics import closed_correct, metrics_by, vqa_specs
from .offline import CONTEXT_FIELDS, LEAK_PATTERNS, build_context, offline_generator

# Every biomed model card opens with this.
CARD_NOTICE = (
    "**Not a medical device. Not for clinical use.** This model has not been validated for diagnosis, treatment or "
    "any clinical decision, and must not be used for them. Its answers about medical images can be wrong in ways "
    "that are hard to notice; any use on real patient data needs review by qualified clinicians and the approvals "
    "your jurisdiction requires."
)

domain = Domain(
    name="biomed",
    description="Biomedical images (figure captions, DICOM, medical VQA) the way LLaVA-Med adapted LLaVA",
    sources={
        "figures": Source(
            description="figure-caption pairs (LLaVA-Med fig_captions JSON, PMC-OA JSONL, LLaVA JSON, Parquet)",
            load=figures.load,
            args=figures.FigureSourceArgs,
            count=figures.count,
        ),
        "dicom": Source(
            description="a folder of DICOM studies (+ CSV/JSONL reports) -> de-identified RGB PNG records",
            load=dicom_source.load,
            args=dicom_source.DicomSourceArgs,
        ),
        "synthetic": Source(
            description="procedurally drawn X-ray/CT/MRI images with lesions (+ pydicom test files), offline",
            load=tiny.load_source,
            args=tiny.SyntheticSourceArgs,
            count=tiny.count_source,
        ),
    },
    benchmarks={
        "vqa_rad": Benchmark(
            description="VQA-RAD (OSF JSON, LLaVA-Med's converted files or Hub Parquet): closed accuracy, open recall",
            load=vqa.load_vqa_rad,
            metrics=typed_vqa_metrics,
            metric_specs=TYPED_VQA_SPECS,
            notes=answer_type_notes,
            correct=closed_correct,
            args=vqa.VQAArgs,
        ),
        "slake": Benchmark(
            description="SLAKE (English by default): closed accuracy, open recall",
            load=vqa.load_slake,
            metrics=typed_vqa_metrics,
            metric_specs=TYPED_VQA_SPECS,
            notes=answer_type_notes,
            correct=closed_correct,
            args=vqa.SlakeArgs,
        ),
        "path_vqa": Benchmark(
            description="PathVQA (Hub Parquet): closed (yes/no) accuracy, open recall",
            load=vqa.load_path_vqa,
            metrics=typed_vqa_metrics,
            metric_specs=TYPED_VQA_SPECS,
            notes=answer_type_notes,
            correct=closed_correct,
            args=vqa.VQAArgs,
        ),
        "llava_med_chat": Benchmark(
            description="LLaVA-Med visual chat (qa50 JSONL): GPT-4-judged relative score; token recall offline",
            load=chat.load,
            metrics=metrics_by("category"),
            metric_specs=vqa_specs(primary="open_recall"),  # open questions only; the judge's score comes first
            args=chat.ChatEvalArgs,
            judge=JUDGE,
            max_new_tokens=512,
        ),
        "synthetic": Benchmark(
            description="held-out synthetic images: lesion/side/modality (closed), body part/finding (open)",
            load=tiny.load_benchmark,
            metrics=metrics_by("kind"),
            metric_specs=vqa_specs(),
            correct=closed_correct,
            args=tiny.SyntheticVQAArgs,
        ),
    },
    prompts_dir=Path(__file__).parent / "prompts",
    build_context=build_context,
    offline_generator=offline_generator,
    context_fields=CONTEXT_FIELDS,
    leak_patterns=LEAK_PATTERNS,
    version="2",  # 2: DICOM reports redacted with their header identifiers
    extras={PATIENT_IMAGES: ("dicom/*",)},
    card_notices=(CARD_NOTICE,),  # the dicom source's converted frames (dataset publishing guards them)
)
