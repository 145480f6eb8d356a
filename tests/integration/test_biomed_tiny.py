"""The README's main job: `llava-adapt recipe run biomed --preset tiny`, end to end, offline, on the CPU.

It must learn (closed questions far above chance), pass pydicom's real DICOM test files through the DICOM source
(converted, counted, de-identified), and leave no patient identifier anywhere in the run directory.
"""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from .tiny_run import run_tiny_preset

# A hang guard, not a timing check: a whole recipe on a busy 2-core machine can take 10x its idle time.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(2400)]


def test_tiny_biomed_recipe_learns_and_keeps_patients_out(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_tiny_preset("biomed", run_dir)

    metrics = json.loads((run_dir / "eval" / "synthetic" / "metrics.json").read_text())
    assert metrics["metrics"]["closed_accuracy"] >= 0.85, metrics["metrics"]
    assert metrics["baseline"]["closed_accuracy"] < 0.5  # chance is about 0.5; the untrained model is far below
    for kind in ("lesion", "side", "modality"):
        assert metrics["metrics"][f"closed_accuracy/{kind}"] >= 0.7, kind
    rows = [json.loads(line) for line in (run_dir / "eval" / "synthetic" / "predictions.jsonl").open()]
    closed = [row["correct"] for row in rows if row["answer_type"] == "closed"]
    assert sum(closed) / len(closed) == pytest.approx(metrics["metrics"]["closed_accuracy"])  # the same rule
    # LLaVA's "no stage 1" ablation (instruct.compare_without_align): scored and shown next to the other two
    assert 0.0 <= metrics["without_align"]["closed_accuracy"] <= 1.0, metrics
    assert (run_dir / "eval" / "synthetic" / "without_align_predictions.jsonl").is_file()
    report = (run_dir / "report.html").read_text()
    assert "stage 2 only (no align)" in report
    processor = json.loads((run_dir / "instruct" / "processor_config.json").read_text())["image_processor"]
    assert processor["do_pad"] is True  # the recipe's image_aspect_ratio: pad, saved for stock AutoProcessor

    prepare = json.loads((run_dir / "manifest.json").read_text())["stages"]["prepare"]
    skipped = prepare["counts"]["skipped"]
    assert skipped.get("truncated or corrupt DICOM") == 1
    captions = [json.loads(line) for line in (run_dir / "data" / "captions.jsonl").read_text().splitlines()]
    dicom_records = [c for c in captions if c["id"].startswith("dicom-")]
    assert len(dicom_records) >= 3, "pydicom's CT_small, MR_small and emri_small must come through the DICOM source"
    assert {c["context"]["modality"] for c in dicom_records} == {"CT", "MRI"}

    identifiers = set()
    for name in ("CT_small.dcm", "MR_small.dcm", "emri_small.dcm"):
        ds = pydicom.dcmread(get_testdata_file(name), stop_before_pixels=True)
        for keyword in ("PatientName", "PatientID", "InstitutionName", "StudyDate"):
            value = str(ds.get(keyword, "") or "").strip()
            if len(value) >= 4:
                identifiers.add(value)
    assert identifiers, "the test files carry identifiers; the check below must be able to fail"
    for path in run_dir.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".jsonl", ".yaml", ".txt", ".md", ".html", ".csv"):
            text = path.read_text(errors="ignore")
            leaked = [v for v in identifiers if v in text]
            assert not leaked, f"{path} contains {leaked}"
