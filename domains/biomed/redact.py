"""Redact a file's own identifiers (from its DICOM header) out of free text such as a radiology report.

This is a safeguard, not a de-identifier: it removes the values the header holds (names, ids, institution, dates,
UIDs) in the forms people write them, and nothing else. A report that names a relative, another hospital or a
date the header does not hold keeps it.

Matching is case-insensitive and whole-word (`"Lee"` is redacted, `"Leeward"` is not); longer values win over
the shorter ones they contain (`"Jane Doe"` becomes one `[REDACTED]`, not two); whitespace inside a value matches
any run of whitespace, and the space around punctuation is optional (`"Doe, Jane"` matches `"DOE ,JANE"` and
`"Doe Jane"`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

REDACTED = "[REDACTED]"
MIN_LENGTH = 2  # shorter values and name components (initials) are not redacted: they would hit ordinary text

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_TOKEN = re.compile(r"\w+|[^\w\s]")


def name_forms(name: str) -> set[str]:
    """The strings a DICOM person name (PN) can appear as in text.

    Args:
        name (`str`): a PN value, `family^given^middle^prefix^suffix`, optionally with `=`-separated ideographic and
            phonetic groups.

    Returns:
        `set[str]`: each family/given/middle component split on spaces (components shorter than `MIN_LENGTH` left
        out; the prefix and suffix, e.g. `Dr`, `Jr`, are titles, not identifiers), plus the whole name as
        `"Given Family"`, `"Given Middle Family"`, `"Family, Given"`, `"Family, Given Middle"` and its raw form.
    """
    forms: set[str] = set()
    for group in str(name).split("="):
        parts = [" ".join(p.split()) for p in group.split("^")] + [""] * 5
        family, given, middle = parts[0], parts[1], parts[2]
        forms.update(word for part in (family, given, middle) for word in part.split() if len(word) >= MIN_LENGTH)
        if family and given:
            forms.update({f"{given} {family}", f"{family}, {given}"})
            if middle:
                forms.update({f"{given} {middle} {family}", f"{family}, {given} {middle}"})
        raw = " ".join(group.split())
        if len(raw) >= MIN_LENGTH:
            forms.add(raw)
    return forms


def date_forms(value: str) -> set[str]:
    """The strings a DICOM date (DA, `YYYYMMDD`) can appear as in text.

    Args:
        value (`str`): the DA value; `YYYY.MM.DD` (old ACR-NEMA) is accepted too. Anything else gives no forms.

    Returns:
        `set[str]`: `YYYYMMDD`, `YYYY-MM-DD`, `YYYY/MM/DD`, `DD/MM/YYYY`, `MM/DD/YYYY`, `DD.MM.YYYY`, `DD-MM-YYYY`,
        `MM-DD-YYYY`, the day/month forms without leading zeros and with a two-digit year, and the month written out
        (`19 January 2004`, `January 19, 2004`, `19 Jan 2004`, `Jan 19, 2004`).
    """
    digits = str(value).strip().replace(".", "")
    if len(digits) != 8 or not digits.isdigit():
        return set()
    year, month, day = digits[:4], digits[4:6], digits[6:]
    if not (1 <= int(month) <= 12 and 1 <= int(day) <= 31):
        return set()
    forms = {digits, f"{year}-{month}-{day}", f"{year}/{month}/{day}"}
    for y in (year, year[2:]):
        for m, d in ((month, day), (str(int(month)), str(int(day)))):
            forms.update({f"{d}/{m}/{y}", f"{m}/{d}/{y}", f"{d}.{m}.{y}", f"{d}-{m}-{y}", f"{m}-{d}-{y}"})
    forms.update({f"{year}-{int(month)}-{int(day)}", f"{year}/{int(month)}/{int(day)}"})
    for written in (MONTHS[int(month) - 1], MONTHS[int(month) - 1][:3]):
        for d in (day, str(int(day))):
            forms.update({f"{d} {written} {year}", f"{written} {d}, {year}"})
    return forms


def redact(text: str, values: Iterable[str]) -> tuple[str, int]:
    """Replace every occurrence of `values` in `text` with `[REDACTED]`.

    Args:
        text (`str`): free text, e.g. a report.
        values (`Iterable[str]`): the strings to remove, exactly as they may appear (see `name_forms`,
            `date_forms`); values shorter than `MIN_LENGTH` are ignored.

    Returns:
        `tuple[str, int]`: the redacted text and the number of replacements.
    """
    pattern = _pattern(values)
    if pattern is None:
        return text, 0
    return pattern.subn(REDACTED, text)


@dataclass
class RedactionCounts:
    """How many reports a source checked and redacted. Counts only: never the values.

    Args:
        reports (`int`, defaults to `0`): reports checked.
        redacted (`int`, defaults to `0`): reports with at least one replacement.
        replacements (`int`, defaults to `0`): replacements in all.
    """

    reports: int = 0
    redacted: int = 0
    replacements: int = 0

    def add(self, replacements: int) -> None:
        """Count one report checked, with `replacements` (`int`) replacements in it."""
        self.reports += 1
        self.redacted += replacements > 0
        self.replacements += replacements

    def summary(self) -> str:
        """One line for the log, e.g. `"redacted 3 identifiers in 1 of 4 reports"`."""
        return f"redacted {self.replacements} identifiers in {self.redacted} of {self.reports} reports"


def _pattern(values: Iterable[str]) -> re.Pattern[str] | None:
    terms = {" ".join(str(v).split()) for v in values}
    terms = sorted((t for t in terms if len(t) >= MIN_LENGTH), key=lambda t: (-len(t), t))
    if not terms:
        return None
    alternatives = "|".join(_term_regex(t) for t in terms)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def _term_regex(term: str) -> str:
    """Whitespace inside a term matches any whitespace; around punctuation it is optional, and so is a comma."""
    out = ""
    previous = ""
    for token in _TOKEN.findall(term):
        word = token[0].isalnum() or token[0] == "_"
        if previous:
            out += r"\s+" if word and previous == "word" else r"\s*"
        out += r",?" if token == "," else re.escape(token)
        previous = "word" if word else "punct"
    return out
