"""Redacting a file's own header identifiers out of report text: the forms matched, the boundaries kept, and the
reader handing the values over without putting them anywhere they could be stored."""

from __future__ import annotations

from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from llava_adapt.domains.biomed.dicom import read_dicom
from llava_adapt.domains.biomed.redact import REDACTED, RedactionCounts, date_forms, name_forms, redact

from .helpers import copy_dicom


def test_name_forms_split_components_and_write_the_whole_name():
    assert name_forms("Doe^Jane") == {"Doe", "Jane", "Jane Doe", "Doe, Jane", "Doe^Jane"}
    forms = name_forms("van der Berg^Anna^K^Dr^Jr")
    assert {"van", "der", "Berg", "Anna", "Anna K van der Berg", "van der Berg, Anna K"} <= forms
    assert not forms & {"K", "Dr", "Jr"}  # initials are too short; prefix and suffix are titles
    assert name_forms("Yamada^Tarou=山田^太郎") >= {"Yamada", "Tarou", "Tarou Yamada", "山田", "太郎", "太郎 山田"}
    assert name_forms("") == set()


def test_date_forms_cover_the_usual_ways_of_writing_a_da():
    forms = date_forms("20040119")
    expected = {"20040119", "2004-01-19", "2004/01/19", "19/01/2004", "01/19/2004", "19.01.2004", "1/19/2004"}
    assert expected | {"19 January 2004", "Jan 19, 2004"} <= forms
    assert date_forms("2004.01.19") == forms  # ACR-NEMA style
    assert date_forms("2004") == set() and date_forms("20041319") == set() and date_forms("") == set()


def test_redact_is_case_insensitive_whole_word_and_longest_first():
    values = name_forms("Doe^Jane") | name_forms("Lee^Ann") | {"PX-7781", "St Mary Hospital"} | date_forms("20040119")
    text = (
        "JANE DOE (Doe, Jane; doe jane) id px-7781 at st  mary\nhospital on 19.01.2004. "
        "Leeward, Doedicurus, Janet and PX-77812 stay; so does 2004-01-190. Ann Lee's scan."
    )
    out, count = redact(text, values)
    assert out == (
        f"{REDACTED} ({REDACTED}; {REDACTED}) id {REDACTED} at {REDACTED} on {REDACTED}. "
        f"Leeward, Doedicurus, Janet and PX-77812 stay; so does 2004-01-190. {REDACTED}'s scan."
    )
    assert count == 7  # whole names count once, not once per component


def test_redact_ignores_values_too_short_to_be_identifying():
    assert redact("a 1 cm nodule", {"1", "a", ""}) == ("a 1 cm nodule", 0)
    assert redact("nothing to do", []) == ("nothing to do", 0)
    assert redact("(a+b)? [x]", {"(a+b)?", "[x]"}) == (f"{REDACTED} {REDACTED}", 2)  # values are not regexes


def test_counts_report_numbers_only():
    counts = RedactionCounts()
    for replaced in (3, 0, 1):
        counts.add(replaced)
    assert counts == RedactionCounts(reports=3, redacted=2, replacements=4)
    assert counts.summary() == "redacted 4 identifiers in 2 of 3 reports"


def test_the_reader_returns_the_file_s_identifiers_for_redaction_only(tmp_path: Path):
    other = Dataset()
    other.PatientID = "OLD-0042"
    other.IssuerOfPatientID = "County Registry"
    path = copy_dicom(
        "CT_small.dcm",
        tmp_path / "IM1.dcm",
        PatientName="Doe^Jane",
        PatientID="PX-7781",
        OtherPatientIDs=["ALT-1", "ALT-2"],
        OtherPatientIDsSequence=Sequence([other]),
        IssuerOfPatientID="MRN Office",
        AccessionNumber="ACC99",
        InstitutionName="St Mary Hospital",
        InstitutionAddress="12 Harbour Road\nPortsmouth",
        ReferringPhysicianName="Lee^Ann",
        PerformingPhysicianName=["Roe^Rick", "Poe^Pam"],
        OperatorsName="Tech^Tom",
        PatientBirthDate="19610305",
        StudyDate="20040119",
        SeriesInstanceUID="1.2.3.4.5",
    )
    image = read_dicom(path)
    phi = image.phi_values()
    expected = {"Jane Doe", "Doe, Jane", "PX-7781", "ALT-1", "ALT-2", "OLD-0042", "County Registry", "MRN Office"}
    expected |= {"ACC99", "St Mary Hospital", "12 Harbour Road", "Portsmouth", "Ann Lee", "Rick", "Poe, Pam", "Tom"}
    expected |= {"1961-03-05", "01/19/2004", "1.2.3.4.5", "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"}
    assert expected <= phi
    assert "Doe" not in repr(image) and "PX-7781" not in repr(image) and "Doe" not in str(image.meta)
    assert "Jane" not in repr(read_dicom(path, frames="all", allow_study_description=True))
