"""Source `dicom`: a folder of DICOM studies (+ optional reports) → de-identified RGB PNG caption records.

Layout it reads (any nesting works; the first folder level under `path` is "the study" for `match_on="study_dir"`)::

    <data root>/<path>/
      s50414267/                 # one study
        series1/IM0001.dcm ...
      s50414268/...
    <data root>/<reports>        # CSV or JSONL: one row per study (or series/file), e.g. study,report,finding

Each selected frame becomes `<output_dir>/dicom/<pseudonym>.png` and a `CaptionRecord` whose id is a hash of the
file's relative path (folder names may carry patient ids), whose caption is the matched report (or, with
`missing_report="describe"`, a sentence built from the allow-listed metadata), and whose context holds only the
allow-listed fields of `context_fields`.

Reports are redacted file by file (`redact_reports`, on by default): the identifying values of the file's own header
(patient name, ids, accession number, institution, physicians, dates, UIDs; `dicom.PHI_KEYWORDS`) are replaced with
`[REDACTED]` in the report and in its label values, before anything is written. The values stay in memory and are
never logged; the log gets a count (`dicom: redacted N identifiers in M of K reports`). This catches what the header
knows, not every identifier a report can hold: de-identify report text that names other people, places or dates.
"""

from __future__ import annotations

import csv
import logging
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from llava_adapt.plugin import CaptionRecord, RecordFileError, Skip, SourceContext, read_jsonl

from .dicom import WINDOW_PRESETS, DicomSkipError, read_dicom, read_keys
from .files import pseudonym, resolve_input, save_png
from .redact import RedactionCounts, redact

log = logging.getLogger("llava_adapt")

ContextField = Literal["modality", "body_part", "view", "study_description"]
NOT_DICOM_SUFFIXES = frozenset({".csv", ".json", ".jsonl", ".txt", ".md", ".png", ".jpg", ".jpeg", ".xml", ".zip"})


class DicomSourceArgs(BaseModel):
    """Arguments of the `dicom` source (recipe `data.args`).

    Args:
        path (`str`, defaults to `"."`): folder of studies, relative to the data root.
        reports (`str | None`, defaults to `None`): CSV or JSONL of reports/labels, relative to the data root.
        match_on (`"study_dir" | "series_dir" | "file" | "study_uid" | "series_uid"`, defaults to `"study_dir"`):
            what a report row's key is compared with: the first folder under `path`, the file's folder (relative
            to `path`), the file path relative to `path` (with or without extension), or a UID.
        key_field (`str`, defaults to `"study"`): the reports column holding the key.
        text_field (`str`, defaults to `"report"`): the reports column holding the caption text.
        label_fields (`list[str]`, defaults to `[]`): reports columns copied into the record's labels.
        missing_report (`"skip" | "describe"`, defaults to `"skip"`): a file without a report is skipped and
            counted, or captioned from its allow-listed metadata ("An X-ray image of the chest, PA view.").
        slices (`"middle" | "all"`, defaults to `"middle"`): per series (files in one folder sharing a Series
            Instance UID), use the middle slice by Instance Number, or every file.
        frames (`"middle" | "all"`, defaults to `"middle"`): per multi-frame file, use the middle frame or all.
        max_frames (`int | None`, defaults to `None`): with `frames="all"`, at most this many evenly spaced frames.
        window (`str | tuple[float, float]`, defaults to `"file"`): `"file"` (the file's VOI LUT/window),
            `"auto"` (percentile stretch), a CT preset (`lung`, `mediastinum`, `soft_tissue`, `abdomen`, `liver`,
            `bone`, `brain`, `subdural`, `stroke`) or `[center, width]` in Hounsfield units (CT only).
        voi_index (`int`, defaults to `0`): which of several windows in a file to use.
        allow_burned_in (`bool`, defaults to `False`): keep images marked Burned In Annotation = YES.
        context_fields (`list[str]`, defaults to `["modality", "body_part", "view"]`): allow-listed metadata that
            becomes record context; add `"study_description"` only when descriptions are known to be free of PHI.
        max_size (`int | None`, defaults to `1024`): shrink written images so the longer side is at most this.
        redact_reports (`bool`, defaults to `True`): replace the identifying values of each file's own header
            (patient name in its usual written forms, patient/other ids, issuer, accession number, institution name
            and address, physician and operator names, birth/study/series/acquisition/content dates in common date
            formats, study/series/SOP instance UIDs) with `[REDACTED]` in its report and label values,
            case-insensitively and as whole words. Turn it off only for reports already de-identified.
    """

    model_config = ConfigDict(extra="forbid")

    path: str = "."
    reports: str | None = None
    match_on: Literal["study_dir", "series_dir", "file", "study_uid", "series_uid"] = "study_dir"
    key_field: str = "study"
    text_field: str = "report"
    label_fields: list[str] = Field(default_factory=list)
    missing_report: Literal["skip", "describe"] = "skip"
    slices: Literal["middle", "all"] = "middle"
    frames: Literal["middle", "all"] = "middle"
    max_frames: int | None = Field(None, ge=1)
    window: str | tuple[float, float] = "file"
    voi_index: int = Field(0, ge=0)
    allow_burned_in: bool = False
    context_fields: list[ContextField] = Field(default_factory=lambda: ["modality", "body_part", "view"])
    max_size: int | None = Field(1024, ge=16)
    redact_reports: bool = True

    @field_validator("window")
    @classmethod
    def _known_window(cls, value: str | tuple[float, float]) -> str | tuple[float, float]:
        if isinstance(value, str) and value not in ("file", "auto") and value not in WINDOW_PRESETS:
            raise ValueError(
                f"unknown window {value!r}; use 'file', 'auto', one of {sorted(WINDOW_PRESETS)}, or [c, w]"
            )
        if isinstance(value, tuple) and value[1] <= 0:
            raise ValueError("window width must be positive")
        return value


def load(args: DicomSourceArgs, ctx: SourceContext) -> Iterator[CaptionRecord | Skip]:
    """Yield one record per selected frame of the DICOM files under `args.path` (see the module docstring)."""
    root = resolve_input(ctx.data_root, args.path, "dicom folder")
    reports = _load_reports(resolve_input(ctx.data_root, args.reports, "reports file"), args) if args.reports else {}
    files = sorted(p for p in root.rglob("*") if p.is_file() and _maybe_dicom(p))
    selected, skips = _select_slices(files, root, args)
    yield from skips
    counts = RedactionCounts()
    for path in selected:
        rel = path.relative_to(root)
        key = _key(rel, path, args.match_on)
        row = reports.get(key) or (reports.get(rel.with_suffix("").as_posix()) if args.match_on == "file" else None)
        text = str(row.get(args.text_field) or "").strip() if row else ""
        if not text and args.missing_report == "skip":
            yield Skip(pseudonym(rel.as_posix(), "dicom"), "empty report" if row else "no report for study")
            continue
        labels = {f: str(row[f]) for f in args.label_fields if row and row.get(f) not in (None, "")}
        yield from convert_file(path, rel.as_posix(), text or None, labels, args, ctx, counts=counts)
    if args.redact_reports and counts.reports:
        log.info("dicom: %s", counts.summary())


def convert_file(
    path: Path,
    name: str,
    report: str | None,
    labels: dict[str, str],
    args: DicomSourceArgs,
    ctx: SourceContext,
    counts: RedactionCounts | None = None,
) -> Iterator[CaptionRecord | Skip]:
    """Convert one DICOM file into records (one per selected frame), writing PNGs under `ctx.output_dir/dicom/`.

    With `args.redact_reports`, the report and the label values are redacted with this file's own identifying
    values (`DicomImage.phi_values()`) first.

    Args:
        path (`Path`): the DICOM file.
        name (`str`): a stable name for it (its path relative to the source folder); only its hash is stored.
        report (`str | None`): the caption; `None` builds one from the allow-listed metadata.
        labels (`dict[str, str]`): labels from the reports file.
        args (`DicomSourceArgs`): conversion settings.
        ctx (`SourceContext`): where to write images.
        counts (`RedactionCounts | None`, defaults to `None`): where to count reports checked and redacted.
    """
    base = pseudonym(name, "dicom")
    try:
        image = read_dicom(
            path,
            frames=args.frames,
            max_frames=args.max_frames,
            window=args.window,
            voi_index=args.voi_index,
            allow_burned_in=args.allow_burned_in,
            allow_study_description="study_description" in args.context_fields,
        )
    except DicomSkipError as exc:
        yield Skip(base, exc.reason)
        return
    meta = dict(image.meta)
    record_labels = dict(labels)
    if args.redact_reports:  # the report, its labels and an allowed study description: free text all three
        phi = image.phi_values()
        replaced = 0
        if report:
            report, replaced = redact(report, phi)
        for key, value in labels.items():
            record_labels[key], found = redact(value, phi)
            replaced += found
        if "study_description" in meta:
            meta["study_description"] = redact(meta["study_description"], phi)[0]
        if counts is not None and (report or labels):
            counts.add(replaced)
    context = {key: meta[key] for key in args.context_fields if key in meta}
    if "modality" in meta:
        record_labels.setdefault("modality", meta["modality"].lower())
    if "body_part" in meta:
        record_labels.setdefault("body_part", meta["body_part"])
    caption = report or describe(meta)
    for index, frame in zip(image.frame_indices, image.frames, strict=True):
        record_id = base if len(image.frames) == 1 else f"{base}-f{index}"
        relative = f"dicom/{record_id}.png"
        save_png(frame, ctx.output_dir / relative, max_size=args.max_size)
        yield CaptionRecord(id=record_id, image=relative, caption=caption, context=context, labels=record_labels)


def describe(meta: dict[str, str]) -> str:
    """A caption from allow-listed metadata only, e.g. `"An X-ray image of the chest, PA view."`."""
    modality = meta.get("modality", "medical")
    article = "An" if modality[:1].upper() in "AEIOUX" or modality.startswith(("MRI", "MR")) else "A"
    text = f"{article} {modality} image"
    if meta.get("body_part"):
        text += f" of the {meta['body_part']}"
    if meta.get("view"):
        text += f", {meta['view']} view"
    text += "."
    if meta.get("study_description"):
        text += f" Study: {meta['study_description']}."
    return text


def _maybe_dicom(path: Path) -> bool:
    return not path.name.startswith(".") and path.suffix.lower() not in NOT_DICOM_SUFFIXES


def _key(rel: Path, path: Path, match_on: str) -> str:
    if match_on == "study_dir":
        return rel.parts[0] if len(rel.parts) > 1 else rel.stem
    if match_on == "series_dir":
        return rel.parent.as_posix()
    if match_on == "file":
        return rel.as_posix()
    try:
        keys = read_keys(path)
    except DicomSkipError:
        return ""
    return keys.study_uid if match_on == "study_uid" else keys.series_uid


def _select_slices(files: list[Path], root: Path, args: DicomSourceArgs) -> tuple[list[Path], list[Skip]]:
    if args.slices == "all":
        return files, []
    groups: dict[str, list[tuple[int, Path]]] = defaultdict(list)
    skips: list[Skip] = []
    for path in files:
        rel = path.relative_to(root).as_posix()
        try:
            keys = read_keys(path)
        except DicomSkipError as exc:
            skips.append(Skip(pseudonym(rel, "dicom"), exc.reason))
            continue
        parent = path.parent.relative_to(root).as_posix()
        group = f"{parent}|{keys.study_uid}|{keys.series_uid}" if keys.series_uid else rel
        groups[group].append((keys.instance_number, path))
    selected = []
    for members in groups.values():
        members.sort(key=lambda m: (m[0], m[1].as_posix()))
        selected.append(members[(len(members) - 1) // 2][1])
    return sorted(selected), skips


def _load_reports(path: Path, args: DicomSourceArgs) -> dict[str, dict[str, str]]:
    rows: list[tuple[int, dict[str, str]]] = []
    if path.suffix.lower() == ".csv":
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or args.key_field not in reader.fieldnames:
                raise RecordFileError(
                    f"{path}: no column {args.key_field!r} (key_field); columns: {reader.fieldnames}"
                )
            rows = [(number + 2, dict(row)) for number, row in enumerate(reader)]
    elif path.suffix.lower() == ".jsonl":
        rows = [(number, {k: "" if v is None else str(v) for k, v in obj.items()}) for number, obj in read_jsonl(path)]
    else:
        raise RecordFileError(f"{path}: reports must be a .csv or .jsonl file")
    table: dict[str, dict[str, str]] = {}
    for number, row in rows:
        key = str(row.get(args.key_field) or "").strip()
        if not key:
            raise RecordFileError(f"{path}:{number}: missing {args.key_field!r} (key_field)")
        if key in table:
            raise RecordFileError(f"{path}:{number}: key {key!r} appears twice; one report per key")
        table[key] = row
    return table
