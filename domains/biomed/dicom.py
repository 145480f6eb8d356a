"""DICOM → 8-bit RGB, with the metadata reduced to an allow-list inside the reader.

The display pipeline follows DICOM PS3.3 C.11 in order:

1. decode the stored pixels (compressed transfer syntaxes need a decoder plugin; pillow covers JPEG baseline and
   JPEG 2000, `pip install "llava-adapt[dicom]"` adds pylibjpeg for JPEG lossless, JPEG-LS and RLE);
2. the modality LUT (Rescale Slope/Intercept or a Modality LUT Sequence; CT becomes Hounsfield units);
3. the VOI transform: a recipe-chosen window preset (CT only), else the file's VOI LUT Sequence or its
   Window Center/Width (LINEAR, LINEAR_EXACT or SIGMOID), else a robust 0.5–99.5 percentile stretch;
4. MONOCHROME1 inverted so that higher is brighter (its Presentation LUT Shape INVERSE states the same
   convention and is not applied a second time);
5. grey replicated to RGB; colour images (RGB, YBR converted by pydicom, PALETTE COLOR through its LUT) kept.

De-identification: `read_dicom` returns only `DicomImage` — pixels and the allow-listed fields of
`ALLOWED_FIELDS`. Patient, institution, physician, date and UID tags never leave this module as data; the one
exception is `DicomImage.phi_values()`, the file's own identifying values (`PHI_KEYWORDS`, in the forms people
write them), which callers use only to redact them out of free text (`redact.redact`) and must never store. A file
whose Burned In Annotation is `YES` is refused unless the caller allows it, since its pixels may show the patient's
name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut, get_decoder, pixel_array

from .redact import MIN_LENGTH, date_forms, name_forms

DICOM_EXTRA = 'pip install "llava-adapt[dicom]"'

# Window presets in Hounsfield units, (center, width): the usual radiology reading windows.
WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "soft_tissue": (40.0, 400.0),
    "abdomen": (60.0, 400.0),
    "liver": (60.0, 160.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
    "subdural": (75.0, 215.0),
    "stroke": (40.0, 40.0),
}

# Modality codes (0008,0060) → the words used in captions and questions.
MODALITY_NAMES: dict[str, str] = {
    "CT": "CT",
    "MR": "MRI",
    "CR": "X-ray",
    "DX": "X-ray",
    "RG": "X-ray",
    "MG": "mammography",
    "US": "ultrasound",
    "NM": "nuclear medicine",
    "PT": "PET",
    "XA": "angiography",
    "RF": "fluoroscopy",
    "OT": "other",
}

# Modalities whose "pixels" are not a picture of the patient (dose grids, segmentations, reports, plans).
NON_IMAGE_MODALITIES = frozenset({"RTDOSE", "RTSTRUCT", "RTPLAN", "RTRECORD", "SEG", "SR", "PR", "KO", "REG", "DOC"})

# The only DICOM attributes that may leave the reader, and the record context keys they become.
ALLOWED_FIELDS: dict[str, str] = {
    "Modality": "modality",
    "BodyPartExamined": "body_part",
    "ViewPosition": "view",
    "StudyDescription": "study_description",
}

# Identifying attributes whose values `DicomImage.phi_values()` returns (for redaction only), by kind.
PHI_NAME_KEYWORDS = (
    "PatientName",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "PhysiciansOfRecord",
    "RequestingPhysician",
    "OperatorsName",
)
PHI_TEXT_KEYWORDS = (
    "PatientID",
    "OtherPatientIDs",
    "IssuerOfPatientID",
    "AccessionNumber",
    "InstitutionName",
    "InstitutionAddress",
    "PatientAddress",
    "PatientTelephoneNumbers",
)
PHI_DATE_KEYWORDS = ("PatientBirthDate", "StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate")
PHI_UID_KEYWORDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
PHI_KEYWORDS = PHI_NAME_KEYWORDS + PHI_TEXT_KEYWORDS + PHI_DATE_KEYWORDS + PHI_UID_KEYWORDS

Window = Literal["file", "auto"] | str | tuple[float, float]


class DicomSkipError(Exception):
    """A DICOM file cannot be used. `reason` is short and stable (it becomes a manifest counter key)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class DicomImage:
    """What leaves the DICOM reader: 8-bit RGB frames and allow-listed metadata, and (for redaction only) the
    file's identifying values behind `phi_values()`.

    Args:
        frames (`list[np.ndarray]`): `(rows, cols, 3)` uint8 arrays, one per selected frame.
        frame_indices (`list[int]`): the index of each selected frame in the file.
        meta (`dict[str, str]`): allow-listed fields by context key (`modality` as a readable name, `modality_code`,
            `body_part`, `view`, and `study_description` only when allowed). Empty values are left out.
        phi (`frozenset[str]`, defaults to empty): the file's identifying values; read them with `phi_values()`.
            Kept out of `repr` and comparisons so that printing or logging the image does not show them.
    """

    frames: list[np.ndarray]
    frame_indices: list[int]
    meta: dict[str, str] = field(default_factory=dict)
    phi: frozenset[str] = field(default_factory=frozenset, repr=False, compare=False)

    def phi_values(self) -> frozenset[str]:
        """The file's identifying values, to redact them out of free text; never store, log or serialise them.

        Returns:
            `frozenset[str]`: the values of `PHI_KEYWORDS` in this file's header: person names as `name_forms`
            gives them, dates as `date_forms` gives them, ids, institution, addresses and UIDs as written
            (whitespace collapsed). Values shorter than 2 characters are left out.
        """
        return self.phi


@dataclass(frozen=True)
class DicomKeys:
    """Grouping and matching keys of a DICOM file. They may be identifying: use them locally, never in records.

    Args:
        study_uid (`str`): Study Instance UID.
        series_uid (`str`): Series Instance UID.
        instance_number (`int`): Instance Number (0 when missing), to order the slices of a series.
    """

    study_uid: str
    series_uid: str
    instance_number: int


def read_keys(path: str | os.PathLike[str]) -> DicomKeys:
    """Read the grouping keys of a DICOM file without its pixels.

    Raises:
        DicomSkipError: the file is not DICOM, or truncated/corrupt.
    """
    ds = _read(path, stop_before_pixels=True)
    try:
        number = int(ds.get("InstanceNumber") or 0)
    except (TypeError, ValueError):
        number = 0
    return DicomKeys(str(ds.get("StudyInstanceUID", "")), str(ds.get("SeriesInstanceUID", "")), number)


def read_dicom(
    path: str | os.PathLike[str],
    *,
    frames: Literal["middle", "all"] = "middle",
    max_frames: int | None = None,
    window: Window = "file",
    voi_index: int = 0,
    allow_burned_in: bool = False,
    allow_study_description: bool = False,
) -> DicomImage:
    """Read a DICOM file into RGB frames and allow-listed metadata.

    Args:
        path (`str | os.PathLike`): the DICOM file.
        frames (`"middle" | "all"`, defaults to `"middle"`): which frames of a multi-frame image to return.
        max_frames (`int | None`, defaults to `None`): with `frames="all"`, keep at most this many, evenly spaced.
        window (`str | tuple[float, float]`, defaults to `"file"`): `"file"` uses the file's VOI LUT or window
            (percentile stretch when it has none); `"auto"` always uses the percentile stretch; a preset name of
            `WINDOW_PRESETS` or an explicit `(center, width)` in modality units applies to CT images (other
            modalities keep the file's VOI).
        voi_index (`int`, defaults to `0`): which window or VOI LUT to use when the file has several.
        allow_burned_in (`bool`, defaults to `False`): accept images whose Burned In Annotation is `YES`.
        allow_study_description (`bool`, defaults to `False`): let the free-text Study Description out of the
            reader (it can name people or places; enable it only for descriptions you have checked).

    Raises:
        DicomSkipError: with a stable reason — not DICOM, truncated/corrupt, no pixel data, burned-in annotation,
            a non-image modality (RT dose, segmentation, ...), an unknown transfer syntax UID, a compressed syntax
            with no decoder installed (the reason names the extra), unsupported pixels.
    """
    if isinstance(window, str) and window not in ("file", "auto") and window not in WINDOW_PRESETS:
        raise ValueError(f"unknown window {window!r}; use 'file', 'auto', a preset {sorted(WINDOW_PRESETS)} or [c, w]")
    ds = _read(path, stop_before_pixels=False)
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise DicomSkipError("no pixel data")
    if str(ds.get("Modality", "")).strip().upper() in NON_IMAGE_MODALITIES:
        raise DicomSkipError("non-image modality")
    if str(ds.get("BurnedInAnnotation", "")).strip().upper() == "YES" and not allow_burned_in:
        raise DicomSkipError("burned-in annotation")
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if syntax is not None and not syntax.is_transfer_syntax:  # a private or mistyped UID: pixels cannot be read
        raise DicomSkipError("unknown transfer syntax")
    if syntax is not None and syntax.is_compressed:
        decoder = get_decoder(syntax)
        if not decoder.is_available:
            raise DicomSkipError(f"no decoder for {syntax.name}: {DICOM_EXTRA}")
    count = _frame_count(ds)
    indices = _select_frames(count, frames, max_frames)
    out = []
    for index in indices:
        try:
            arr = pixel_array(ds, index=index if count > 1 else None)
        except (ValueError, RuntimeError, NotImplementedError, AttributeError, KeyError, EOFError) as exc:
            raise DicomSkipError(_decode_reason(exc)) from None
        out.append(_to_rgb(arr, ds, window, voi_index))
    meta = _allowed_meta(ds, allow_study_description)
    return DicomImage(frames=out, frame_indices=indices, meta=meta, phi=_phi_values(ds))


def window_to_unit(arr: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """Map values through a DICOM window to `[0, 1]` (PS3.3 C.11.2.1.2).

    Args:
        arr (`np.ndarray`): values after the modality LUT.
        center (`float`): Window Center.
        width (`float`): Window Width (must be > 0; ≥ 1 for LINEAR).
        function (`str`, defaults to `"LINEAR"`): VOI LUT Function: `LINEAR`, `LINEAR_EXACT` or `SIGMOID`.
    """
    arr = arr.astype(np.float64)
    function = function.upper()
    if function == "SIGMOID":
        return 1.0 / (1.0 + np.exp(-4.0 * (arr - center) / width))
    if function == "LINEAR_EXACT":
        return np.clip((arr - (center - width / 2.0)) / width, 0.0, 1.0)
    width = max(width, 1.0)
    return np.clip((arr - (center - 0.5)) / (width - 1.0) + 0.5, 0.0, 1.0)


def _read(path: str | os.PathLike[str], *, stop_before_pixels: bool) -> Dataset:
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError:
        raise DicomSkipError("not a DICOM file") from None
    except (EOFError, OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        raise DicomSkipError("truncated or corrupt DICOM") from None
    if "SOPClassUID" not in ds and "Modality" not in ds and "PixelData" not in ds:
        # A valid preamble and file meta but none of the dataset: the file was cut short.
        raise DicomSkipError("truncated or corrupt DICOM" if ds.file_meta else "not a DICOM image")
    return ds


def _decode_reason(exc: Exception) -> str:
    text = str(exc)
    if "missing dependencies" in text or "no plugins" in text.lower():
        return f"no decoder for this transfer syntax: {DICOM_EXTRA}"
    if "less than expected" in text or "truncated" in text.lower():
        return "truncated or corrupt DICOM"
    return "undecodable pixel data"


def _frame_count(ds: Dataset) -> int:
    try:
        return max(int(ds.get("NumberOfFrames") or 1), 1)
    except (TypeError, ValueError):
        return 1


def _select_frames(count: int, frames: str, max_frames: int | None) -> list[int]:
    if frames == "middle":
        return [count // 2]
    if frames != "all":
        raise ValueError(f"frames must be 'middle' or 'all', got {frames!r}")
    if max_frames is None or max_frames >= count:
        return list(range(count))
    if max_frames < 1:
        raise ValueError("max_frames must be at least 1")
    return sorted({round(i * (count - 1) / max(max_frames - 1, 1)) for i in range(max_frames)})


def _to_rgb(arr: np.ndarray, ds: Dataset, window: Window, voi_index: int) -> np.ndarray:
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    samples = int(ds.get("SamplesPerPixel") or 1)
    if photometric == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)
        return _scale_colour(arr, 16 if arr.dtype == np.uint16 else 8)
    if samples == 3 or arr.ndim == 3:
        if arr.ndim != 3 or arr.shape[-1] != 3:
            raise DicomSkipError("unsupported pixel layout")
        return _scale_colour(arr, int(ds.get("BitsStored") or 8))
    if arr.ndim != 2:
        raise DicomSkipError("unsupported pixel layout")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise DicomSkipError("undecodable pixel data")
    values = apply_modality_lut(arr, ds)
    unit = _voi(values, ds, window, voi_index)
    if photometric == "MONOCHROME1":
        unit = 1.0 - unit
    grey = np.rint(unit * 255.0).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def _voi(values: np.ndarray, ds: Dataset, window: Window, voi_index: int) -> np.ndarray:
    modality = str(ds.get("Modality", "")).upper()
    if window not in ("file", "auto") and modality == "CT":
        center, width = WINDOW_PRESETS[window] if isinstance(window, str) else window
        return window_to_unit(values, float(center), float(width))
    if window != "auto" and "VOILUTSequence" in ds:
        lut = ds.VOILUTSequence[min(voi_index, len(ds.VOILUTSequence) - 1)]
        data = np.asarray(lut.LUTData if isinstance(lut.LUTData, list) else [lut.LUTData], dtype=np.float64)
        out = apply_voi_lut(values, ds, index=voi_index, prefer_lut=True).astype(np.float64)
        low, high = float(data.min()), float(data.max())
        return np.clip((out - low) / (high - low), 0.0, 1.0) if high > low else np.zeros_like(out)
    if window != "auto" and "WindowCenter" in ds and "WindowWidth" in ds:
        center, width = _pick(ds.WindowCenter, voi_index), _pick(ds.WindowWidth, voi_index)
        if width > 0:
            return window_to_unit(values, center, width, str(ds.get("VOILUTFunction", "LINEAR")))
    return _percentile_stretch(values)


def _pick(value: object, index: int) -> float:
    if isinstance(value, (list, tuple)) or hasattr(value, "__getitem__") and not isinstance(value, str):
        items = list(value)  # type: ignore[arg-type]
        return float(items[min(index, len(items) - 1)])
    return float(value)  # type: ignore[arg-type]


def _percentile_stretch(values: np.ndarray) -> np.ndarray:
    low, high = np.percentile(values, [0.5, 99.5])
    if high <= low:
        high = low + 1.0
    return np.clip((values.astype(np.float64) - low) / (high - low), 0.0, 1.0)


def _scale_colour(arr: np.ndarray, bits: int) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    top = float(2 ** max(bits, 1) - 1)
    return np.rint(np.clip(arr.astype(np.float64) / top, 0.0, 1.0) * 255.0).astype(np.uint8)


def _allowed_meta(ds: Dataset, allow_study_description: bool) -> dict[str, str]:
    meta: dict[str, str] = {}
    for keyword, key in ALLOWED_FIELDS.items():
        if keyword == "StudyDescription" and not allow_study_description:
            continue
        value = " ".join(str(ds.get(keyword, "") or "").split())
        if not value:
            continue
        if keyword == "Modality":
            meta["modality_code"] = value.upper()
            value = MODALITY_NAMES.get(value.upper(), value.upper())
        elif keyword == "BodyPartExamined":
            value = value.replace("_", " ").lower()
        meta[key] = value
    return meta


def _phi_values(ds: Dataset) -> frozenset[str]:
    values: set[str] = set()
    for keyword in PHI_NAME_KEYWORDS:
        for name in _strings(ds.get(keyword)):
            values.update(name_forms(name))
    for keyword in PHI_TEXT_KEYWORDS:
        for text in _strings(ds.get(keyword)):
            values.add(" ".join(text.split()))
    for item in ds.get("OtherPatientIDsSequence") or []:
        for keyword in ("PatientID", "IssuerOfPatientID"):
            values.update(" ".join(text.split()) for text in _strings(item.get(keyword)))
    for keyword in PHI_DATE_KEYWORDS:
        for date in _strings(ds.get(keyword)):
            values.update(date_forms(date))
    for keyword in PHI_UID_KEYWORDS:
        values.update(_strings(ds.get(keyword)))
    return frozenset(v for v in values if len(v) >= MIN_LENGTH)


def _strings(value: object) -> list[str]:
    """The non-empty strings of an element value: each of a multi-valued one, and each line of a multi-line one."""
    if value is None:
        return []
    out: list[str] = []
    for item in value if isinstance(value, (list, tuple, MultiValue)) else [value]:
        text = str(item or "").strip()
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        out.extend([text, *lines] if len(lines) > 1 else [text] if text else [])
    return out
