"""The `dicom` source over a study folder built from pydicom's real files: reports, skips, de-identification."""

from __future__ import annotations

import csv
import json
import logging
import re
from collections import Counter
from pathlib import Path

import pydantic
import pytest
from pydicom.pixels import get_decoder
from pydicom.uid import JPEGLSLossless

from llava_adapt.data.jsonl import RecordFileError
from llava_adapt.data.records import CaptionRecord, Skip
from llava_adapt.domain import SourceContext
from llava_adapt.domains.biomed.dicom_source import DicomSourceArgs, describe, load
from llava_adapt.recipe.loader import load_recipe
from llava_adapt.run.pipeline import run_pipeline
from llava_adapt.stages.prepare import image_problem, resolve_image

from .helpers import copy_dicom, dicom_file, phi_values

JPEG_LS_DECODER = get_decoder(JPEGLSLossless).is_available
SOURCES = ("CT_small.dcm", "MR_small.dcm", "emri_small.dcm", "MR_small_jpeg_ls_lossless.dcm")


def build_studies(root: Path) -> None:
    """s1: a CT series of 3 slices; s2: one MR; s3: a 10-frame MR; s4: JPEG-LS; s5: a truncated copy;
    s6: burned-in annotation; s7: no report; plus a stray text file."""
    for number in (1, 2, 3):
        copy_dicom("CT_small.dcm", root / "studies/s1/series1" / f"IM{number}.dcm", InstanceNumber=number)
    copy_dicom("MR_small.dcm", root / "studies/s2/IM1.dcm")
    copy_dicom("emri_small.dcm", root / "studies/s3/IM1.dcm")
    copy_dicom("MR_small_jpeg_ls_lossless.dcm", root / "studies/s4/IM1.dcm")
    (root / "studies/s5").mkdir(parents=True)
    (root / "studies/s5/IM1.dcm").write_bytes(dicom_file("CT_small.dcm").read_bytes()[:-4000])
    copy_dicom("CT_small.dcm", root / "studies/s6/IM1.dcm", BurnedInAnnotation="YES", SeriesInstanceUID="1.2.3.6")
    copy_dicom("MR_small.dcm", root / "studies/s7/IM1.dcm", SeriesInstanceUID="1.2.3.7")
    (root / "studies/s2/notes.txt").write_text("reader notes")
    (root / "reports.csv").write_text(
        "study,report,finding\n"
        "s1,Axial CT of the chest. No acute findings.,normal\n"
        "s2,MRI slice with a bright focus.,focus\n"
        "s3,Multi-frame MRI of the head.,\n"
        "s4,JPEG-LS MRI.,x\n"
        "s5,Truncated study.,x\n"
        "s6,Burned-in study.,x\n"
    )


def run(ctx: SourceContext, **args) -> tuple[list[CaptionRecord], Counter[str]]:
    out = list(load(DicomSourceArgs(**args), ctx))
    return [r for r in out if isinstance(r, CaptionRecord)], Counter(s.reason for s in out if isinstance(s, Skip))


def test_study_folder_with_reports(ctx: SourceContext):
    build_studies(ctx.data_root)
    records, skips = run(ctx, path="studies", reports="reports.csv", label_fields=["finding"])
    by_caption = {r.caption: r for r in records}
    expected = {
        "Axial CT of the chest. No acute findings.",
        "MRI slice with a bright focus.",
        "Multi-frame MRI of the head.",
    }
    if JPEG_LS_DECODER:  # with the dicom extra installed, s4 decodes too
        expected.add("JPEG-LS MRI.")
    assert set(by_caption) == expected
    assert len(records) == len(expected)  # the CT series gives its middle slice only; emri its middle frame
    assert by_caption["Axial CT of the chest. No acute findings."].labels == {"finding": "normal", "modality": "ct"}
    assert by_caption["Multi-frame MRI of the head."].context == {"modality": "MRI", "body_part": "head"}
    jpeg_ls = [r for r in skips if "JPEG-LS" in r]
    assert skips["truncated or corrupt DICOM"] == 1
    assert skips["burned-in annotation"] == 1
    assert skips["no report for study"] == 1
    if not JPEG_LS_DECODER:
        assert len(jpeg_ls) == 1 and 'pip install "llava-adapt[dicom]"' in jpeg_ls[0]
    for record in records:
        stored, reason = resolve_image(record.image, ctx.output_dir, ctx.data_root)
        assert reason is None and image_problem(ctx.output_dir / stored) is None


def test_middle_slice_of_a_series(ctx: SourceContext):
    build_studies(ctx.data_root)
    middle, _ = run(ctx, path="studies/s1", missing_report="describe")
    every, _ = run(ctx, path="studies/s1", missing_report="describe", slices="all")
    assert len(middle) == 1 and len(every) == 3
    assert middle[0].id in {r.id for r in every}
    assert middle[0].id == [r.id for r in every][1]  # sorted IM1, IM2, IM3: the middle is IM2


def test_all_frames(ctx: SourceContext):
    copy_dicom("emri_small.dcm", ctx.data_root / "mr/IM1.dcm")
    records, _ = run(ctx, path="mr", missing_report="describe", frames="all", max_frames=4)
    assert [r.id.rsplit("-", 1)[1] for r in records] == ["f0", "f3", "f6", "f9"]
    assert all((ctx.output_dir / r.image).is_file() for r in records)


def test_no_phi_in_records_or_written_files(ctx: SourceContext):
    build_studies(ctx.data_root)
    phi = set().union(*(phi_values(dicom_file(name)) for name in SOURCES))
    assert {"CompressedSamples^CT1", "JFK IMAGING CENTER", "TOSHIBA"} <= phi
    phi |= {"s1", "s2", "s3", "series1", "IM1", "IM2"}  # folder and file names can carry patient ids too
    records, skips = run(ctx, path="studies", reports="reports.csv", missing_report="describe")
    outputs = list(load(DicomSourceArgs(path="studies", reports="reports.csv"), ctx))
    text = json.dumps([r.to_dict() for r in records] + [vars(s) for s in outputs if isinstance(s, Skip)])
    leaked = [value for value in phi if value in text.replace("dicom/", "")]
    assert leaked == []
    written = [p for p in ctx.output_dir.rglob("*") if p.is_file()]
    assert written and all(p.suffix == ".png" for p in written)
    for path in written:
        data = path.read_bytes()
        assert not any(value.encode() in data for value in phi if len(value) >= 6), path
        assert b"tEXt" not in data and b"iTXt" not in data and b"eXIf" not in data


def test_describe_from_metadata(ctx: SourceContext):
    copy_dicom("RG1_UNCR.dcm", ctx.data_root / "cr/IM1.dcm")
    records, _ = run(ctx, path="cr", missing_report="describe", max_size=256)
    assert records[0].caption == "An X-ray image of the chest, PA view."
    assert records[0].context == {"modality": "X-ray", "body_part": "chest", "view": "PA"}
    assert describe({"modality": "CT"}) == "A CT image."
    assert describe({}) == "A medical image."


def test_reports_jsonl_and_uid_matching(ctx: SourceContext):
    copy_dicom("MR_small.dcm", ctx.data_root / "flat/one.dcm")
    uid = __import__("pydicom").dcmread(dicom_file("MR_small.dcm")).StudyInstanceUID
    (ctx.data_root / "reports.jsonl").write_text(json.dumps({"uid": uid, "text": "Matched by UID."}) + "\n")
    records, _ = run(
        ctx, path="flat", reports="reports.jsonl", match_on="study_uid", key_field="uid", text_field="text"
    )
    assert [r.caption for r in records] == ["Matched by UID."]
    assert uid not in json.dumps(records[0].to_dict())


def test_bad_reports_files_name_file_and_line(ctx: SourceContext):
    copy_dicom("MR_small.dcm", ctx.data_root / "flat/one.dcm")
    (ctx.data_root / "bad.jsonl").write_text('{"study": "one", "report": "ok"}\n{"study": \n')
    with pytest.raises(RecordFileError, match=r"bad.jsonl:2"):
        run(ctx, path="flat", reports="bad.jsonl")
    (ctx.data_root / "nokey.csv").write_text("id,report\none,text\n")
    with pytest.raises(RecordFileError, match="no column 'study'"):
        run(ctx, path="flat", reports="nokey.csv")
    (ctx.data_root / "dup.csv").write_text("study,report\none,a\none,b\n")
    with pytest.raises(RecordFileError, match=r"dup.csv:3: key 'one' appears twice"):
        run(ctx, path="flat", reports="dup.csv")


def test_paths_must_stay_in_the_data_root(ctx: SourceContext):
    with pytest.raises(ValueError, match="outside the data root"):
        run(ctx, path="../elsewhere")
    with pytest.raises(FileNotFoundError):
        run(ctx, path="missing")


def test_args_are_validated():
    with pytest.raises(pydantic.ValidationError, match="unknown window"):
        DicomSourceArgs(window="kidney")
    with pytest.raises(pydantic.ValidationError):
        DicomSourceArgs(context_fields=["patient_name"])
    with pytest.raises(pydantic.ValidationError):
        DicomSourceArgs(folder="x")
    assert DicomSourceArgs(window=[40, 400]).window == (40.0, 400.0)


# A study whose header names the patient, and a report that repeats the header's values in the ways people write.
HEADER = {
    "PatientName": "Doe^Jane",
    "PatientID": "PX-7781",
    "StudyDate": "20040119",
    "InstitutionName": "St Mary Hospital",
    "ReferringPhysicianName": "Lee^Ann",
}
REPORT = (
    "Jane Doe (DOE, JANE), ID PX-7781, seen 2004-01-19 (01/19/2004) at st mary hospital, referred by Dr Ann Lee. "
    "Findings: small nodule in the left upper lobe. Leeward wing follow-up in 3 months."
)
REDACTED_REPORT = (
    "[REDACTED] ([REDACTED]), ID [REDACTED], seen [REDACTED] ([REDACTED]) at [REDACTED], referred by Dr [REDACTED]. "
    "Findings: small nodule in the left upper lobe. Leeward wing follow-up in 3 months."
)
WRITTEN_FORMS = ("Jane Doe", "DOE, JANE", "PX-7781", "2004-01-19", "01/19/2004", "st mary hospital", "Ann Lee")
WORDS = ("Jane", "Doe", "Lee", "Ann", "PX-7781", "20040119", "2004-01-19", "01/19/2004", "St Mary Hospital")


def write_named_study(root: Path) -> None:
    copy_dicom("CT_small.dcm", root / "studies/case1/IM1.dcm", **HEADER)
    with open(root / "reports.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([("study", "report", "finding"), ("case1", REPORT, "nodule (Jane Doe)")])


def leaked(text: str) -> list[str]:
    """The identifying words of `HEADER` found in `text` as whole words, in any case ("Leeward" is not "Lee")."""
    return [w for w in WORDS if re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text, re.IGNORECASE)]


def test_reports_are_redacted_with_the_file_s_own_header(ctx: SourceContext, caplog: pytest.LogCaptureFixture):
    write_named_study(ctx.data_root)
    assert leaked(REPORT) and leaked("nodule (Jane Doe)")  # the check below can fail
    with caplog.at_level(logging.INFO, logger="llava_adapt"):
        records, skips = run(ctx, path="studies", reports="reports.csv", label_fields=["finding"])
    assert not skips and len(records) == 1
    caption = records[0].caption
    assert caption == REDACTED_REPORT
    assert not any(form.lower() in caption.lower() for form in WRITTEN_FORMS)
    assert "small nodule in the left upper lobe" in caption and "Leeward" in caption
    assert records[0].labels == {"finding": "nodule ([REDACTED])", "modality": "ct"}
    assert leaked(json.dumps(records[0].to_dict())) == []
    assert "dicom: redacted 8 identifiers in 1 of 1 reports" in caplog.messages  # 7 in the report, 1 in the label
    assert leaked(caplog.text) == []


def test_redaction_uses_each_file_s_own_header(ctx: SourceContext):
    copy_dicom("CT_small.dcm", ctx.data_root / "studies/a/IM1.dcm", PatientName="Doe^Jane")
    copy_dicom("MR_small.dcm", ctx.data_root / "studies/b/IM1.dcm", PatientName="Roe^Rita")
    (ctx.data_root / "reports.csv").write_text("study,report\na,Jane Doe and Rita Roe.\nb,Jane Doe and Rita Roe.\n")
    records, _ = run(ctx, path="studies", reports="reports.csv")
    assert sorted(r.caption for r in records) == ["Jane Doe and [REDACTED].", "[REDACTED] and Rita Roe."]


def test_an_allowed_study_description_is_redacted_too(ctx: SourceContext):
    copy_dicom("CT_small.dcm", ctx.data_root / "studies/a/IM1.dcm", StudyDescription="CT CHEST DOE JANE", **HEADER)
    fields = ["modality", "study_description"]
    records, _ = run(ctx, path="studies", missing_report="describe", context_fields=fields)
    assert records[0].context["study_description"] == "CT CHEST [REDACTED]"
    assert leaked(records[0].caption) == [] and leaked(json.dumps(records[0].to_dict())) == []


def test_redaction_can_be_switched_off(ctx: SourceContext, caplog: pytest.LogCaptureFixture):
    write_named_study(ctx.data_root)
    with caplog.at_level(logging.INFO, logger="llava_adapt"):
        records, _ = run(ctx, path="studies", reports="reports.csv", label_fields=["finding"], redact_reports=False)
    assert records[0].caption == REPORT and records[0].labels["finding"] == "nodule (Jane Doe)"
    assert not any("redacted" in m for m in caplog.messages)
    assert DicomSourceArgs().redact_reports is True


def test_prepare_writes_no_header_identifier_anywhere_in_the_run(tmp_path: Path, ctx: SourceContext):
    write_named_study(ctx.data_root)
    run_dir = tmp_path / "run"
    overrides = [
        "stages=[prepare]",
        f"data.root={ctx.data_root}",
        "data.source=dicom",
        "data.args={path: studies, reports: reports.csv, label_fields: [finding]}",
    ]
    unredacted = load_recipe("biomed", overrides=[*overrides, "data.args.redact_reports=false"], run_dir=str(run_dir))
    run_pipeline(unredacted, unredacted.domain())
    assert leaked((run_dir / "data" / "captions.jsonl").read_text())  # the check below can fail
    loaded = load_recipe("biomed", overrides=overrides, run_dir=str(run_dir))
    run_pipeline(loaded, loaded.domain())  # the source's arguments changed: prepare runs again, from scratch
    assert json.loads((run_dir / "manifest.json").read_text())["stages"]["prepare"]["counts"]["kept"] == 1
    rows = [json.loads(line) for line in (run_dir / "data" / "captions.jsonl").read_text().splitlines()]
    assert [r["caption"] for r in rows] == [REDACTED_REPORT]
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert {"manifest.json", "recipe.yaml", "captions.jsonl"} <= {p.name for p in files}
    for path in files:
        assert leaked(path.read_bytes().decode("latin-1")) == [], path
