"""Matching a request's subjects to an agency's own records, and reading its CSV exports.

Every agency answers "do you know this child, this household?" with the same rule, so that
a "not known" from one agency means the same as from another. The rule, in order:

1. **Strong identifier, corroborated.** For each identifier the agency holds
   (``strong_ids``: the NHS number for health, the Unique Pupil Number for education, the
   local authority child id and NHS number for social care), a subject that carries it and
   the one record holding the same value match, with confidence 1.0 and that identifier as
   the method, **only when the record's own details corroborate it**: the same date of
   birth, and the same name (``same_name`` below). An identifier is typed by hand, copied
   from the wrong line of a form or taken from a sibling's letter; on its own it says which
   record to look at, never that the record is this child. When the details disagree (or
   the subject gives none to check), the subject is not matched and the match carries
   ``identifier_conflict``: the identifier, for a person in the MASH to check by hand.
2. **Name, date of birth and postcode.** Otherwise the subject needs a given name, a family
   name, a date of birth and a postcode. The candidates are the records with exactly the
   same date of birth and normalised postcode. Names are normalised (case folded, accents
   stripped, apostrophes dropped, other punctuation read as a space, spaces collapsed) and
   a candidate's similarity (0-100) is the best of three rapidfuzz scores:

   - ``token_sort_ratio`` of the full names, which forgives word order (given and family
     name swapped) and small spelling differences;
   - the same with only the first given name, when one side records a single given name
     and the other a middle name too ("Reece" against "Reece Anthony");
   - ``ratio`` of the names with every space removed, which forgives "Smith-Jones",
     "Smith Jones" and "Smithjones".

   A candidate qualifies at a similarity of ``SIMILARITY_THRESHOLD`` (88) or more *and*
   first given names at least ``GIVEN_NAME_THRESHOLD`` (80) alike (or alike the other way
   round, given and family name swapped): twins "Ava Richardson" and "Eva Richardson" are
   93 alike as full names, but they are two children. This pair of conditions is
   ``same_name``, used for corroboration above and by the hub's chronology too. A single
   qualifying candidate, or a best one at least ``CLEAR_MARGIN`` (5) points ahead of the
   next, matches with method ``NAME_DOB_POSTCODE`` and confidence
   ``0.70 + 0.25 * (similarity - 88) / 12``: 0.70 at the threshold, 0.95 for identical
   names, never 1.0 because no identifier confirmed it.
3. **Otherwise not matched**: method ``NONE``, confidence 0.0.

Whenever the rule could pick the wrong person it answers "not known" instead, because
handing the hub someone else's record is worse than handing it nothing:

- a record whose strong identifier differs from the subject's is never matched (two NHS
  numbers are two people, whatever the names say): when it is the one the name, date of
  birth and postcode point at, the subject is unmatched with ``identifier_conflict``; a
  strong-identifier hit whose other identifier conflicts is refused the same way;
- two records holding the same strong identifier, or two strong identifiers pointing at
  different records, leave the subject unmatched with ``identifier_conflict``; two
  qualifying candidates with no clear winner (a duplicate record) leave it unmatched;
- across one request, a record matched by two different subjects is given to neither.

A surname added or dropped ("Holloway" against "Holloway-Carver") is deliberately *not*
matched: that is for a person to confirm, not for the adapter to guess.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from rapidfuzz import fuzz

from mash.errors import MashError
from schemas.enums import Engagement, MatchMethod, SubjectRole
from schemas.models import Subject, SubjectMatch, normalise_postcode

__all__ = [
    "CLEAR_MARGIN",
    "GIVEN_NAME_THRESHOLD",
    "PERSON_COLUMNS",
    "SIMILARITY_THRESHOLD",
    "Assessment",
    "CsvRow",
    "ExportError",
    "ExportFile",
    "ExportFolder",
    "MatchedSubject",
    "PeopleExport",
    "PersonRecord",
    "RequestMatch",
    "SubjectMatcher",
    "check_export",
    "combine_assessments",
    "corroborates",
    "name_similarity",
    "normalise_name",
    "parse_date",
    "read_csv",
    "read_rows",
    "same_name",
]

SIMILARITY_THRESHOLD = 88.0
CLEAR_MARGIN = 5.0
GIVEN_NAME_THRESHOLD = 80.0
_MIN_CONFIDENCE = 0.70
_MAX_CONFIDENCE = 0.95

_STRONG_FIELDS: Mapping[MatchMethod, str] = {
    MatchMethod.NHS_NUMBER: "nhs_number",
    MatchMethod.UPN: "upn",
    MatchMethod.LA_CHILD_ID: "la_child_id",
}

_APOSTROPHES = re.compile(r"['\u2018\u2019\u02bc`]")
_PUNCTUATION = re.compile(r"[^\w\s]|_")
_ID_SEPARATORS = re.compile(r"[^0-9A-Za-z]")


# --- Values ---------------------------------------------------------------------------------


def _compact_id(value: str | None) -> str | None:
    # Exports write identifiers with spaces or hyphens ("999 123 4567"); compare bare.
    if value is None:
        return None
    compact = _ID_SEPARATORS.sub("", value).upper()
    return compact or None


@dataclass(frozen=True)
class PersonRecord:
    """One person as an agency's export holds them; ``record_id`` is the agency's own id."""

    record_id: str
    given_name: str
    family_name: str
    date_of_birth: date | None
    postcode: str | None
    household_id: str
    nhs_number: str | None = None
    upn: str | None = None
    la_child_id: str | None = None

    def __post_init__(self) -> None:
        # Normalised once here so that every index and comparison sees the same form.
        if self.postcode is not None:
            object.__setattr__(self, "postcode", normalise_postcode(self.postcode) or None)
        for name in _STRONG_FIELDS.values():
            object.__setattr__(self, name, _compact_id(getattr(self, name)))

    @property
    def display_name(self) -> str:
        return " ".join(f"{self.given_name} {self.family_name}".split())

    def age_on(self, day: date) -> int | None:
        if self.date_of_birth is None:
            return None
        born = self.date_of_birth
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


@dataclass(frozen=True)
class MatchedSubject:
    """A request subject, the agency record it matched, and the match as reported."""

    subject: Subject
    record: PersonRecord
    match: SubjectMatch


@dataclass(frozen=True)
class RequestMatch:
    """Every subject of a request matched at once: one ``SubjectMatch`` per subject, in order."""

    matches: list[SubjectMatch]
    matched: list[MatchedSubject]

    @property
    def household_ids(self) -> list[str]:
        """Households of the matched subjects, the child's first (see ``by_priority``)."""
        return list(dict.fromkeys(m.record.household_id for m in self.by_priority()))

    def by_priority(self) -> list[MatchedSubject]:
        """Matched subjects with children first, then parents, carers and others.

        Findings models that describe one household or one pupil describe the child's.
        """
        return sorted(self.matched, key=lambda m: _ROLE_PRIORITY[m.subject.role])


_ROLE_PRIORITY: Mapping[SubjectRole, int] = {
    SubjectRole.CHILD: 0,
    SubjectRole.UNBORN: 1,
    SubjectRole.SIBLING: 2,
    SubjectRole.PARENT: 3,
    SubjectRole.CARER: 4,
    SubjectRole.ADULT_IN_HOUSEHOLD: 5,
}


# --- Names ----------------------------------------------------------------------------------


def normalise_name(value: str | None) -> str:
    """Case folded, accents stripped, apostrophes dropped, other punctuation a space."""
    if not value:
        return ""
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    letters = _APOSTROPHES.sub("", letters)
    return " ".join(_PUNCTUATION.sub(" ", letters).split())


def name_similarity(given_a: str, family_a: str, given_b: str, family_b: str) -> float:
    """Similarity 0-100 of two already normalised names, as the module docstring states."""
    full_a, full_b = f"{given_a} {family_a}", f"{given_b} {family_b}"
    scores = [
        fuzz.token_sort_ratio(full_a, full_b),
        fuzz.ratio(full_a.replace(" ", ""), full_b.replace(" ", "")),
    ]
    firsts_a, firsts_b = given_a.split(), given_b.split()
    # Only when one side has no middle name: "Mary Ann" and "Mary Beth" stay different.
    if firsts_a and firsts_b and (len(firsts_a) == 1 or len(firsts_b) == 1):
        scores.append(
            fuzz.token_sort_ratio(f"{firsts_a[0]} {family_a}", f"{firsts_b[0]} {family_b}")
        )
    return float(max(scores))


def _given_names_alike(given_a: str, family_a: str, given_b: str, family_b: str) -> bool:
    # First given names only: "Reece" and "Reece Anthony" are one boy. Swapped given and
    # family names (recorded the other way round) compare each against the other's.
    first_a, first_b = given_a.split()[0], given_b.split()[0]
    if fuzz.ratio(first_a, first_b) >= GIVEN_NAME_THRESHOLD:
        return True
    return (
        fuzz.ratio(first_a, family_b.split()[0]) >= GIVEN_NAME_THRESHOLD
        and fuzz.ratio(family_a.split()[0], first_b) >= GIVEN_NAME_THRESHOLD
    )


def same_name(given_a: str, family_a: str, given_b: str, family_b: str) -> bool:
    """Two already normalised names of one person, by the rule in the module docstring:
    alike as whole names, and the given names alike too (so twins are two children)."""
    if not (given_a and family_a and given_b and family_b):
        return False
    return name_similarity(
        given_a, family_a, given_b, family_b
    ) >= SIMILARITY_THRESHOLD and _given_names_alike(given_a, family_a, given_b, family_b)


def corroborates(subject: Subject, record: PersonRecord) -> bool:
    """Whether the record's own date of birth and name confirm it is the subject's: what an
    identifier needs before anything about the record is disclosed."""
    if subject.date_of_birth is None or subject.date_of_birth != record.date_of_birth:
        return False
    return same_name(
        normalise_name(subject.given_name),
        normalise_name(subject.family_name),
        normalise_name(record.given_name),
        normalise_name(record.family_name),
    )


def _confidence(similarity: float) -> float:
    span = 100.0 - SIMILARITY_THRESHOLD
    share = (similarity - SIMILARITY_THRESHOLD) / span
    return round(_MIN_CONFIDENCE + (_MAX_CONFIDENCE - _MIN_CONFIDENCE) * share, 3)


@dataclass(frozen=True)
class _Found:
    record: PersonRecord
    method: MatchMethod
    confidence: float


@dataclass(frozen=True)
class _Refused:
    """The identifiers settle that the subject must not be matched at all; ``conflict`` is
    the identifier a person should check."""

    conflict: MatchMethod


@dataclass(frozen=True)
class _Indexed:
    record: PersonRecord
    given: str
    family: str


# --- The matcher ----------------------------------------------------------------------------


class SubjectMatcher:
    """An agency's people, indexed for the matching rule in the module docstring.

    Lookups are dictionary hits (by strong identifier, and by date of birth and postcode),
    so the cost of a match does not grow with the number of records.
    """

    def __init__(
        self, people: Iterable[PersonRecord], strong_ids: tuple[MatchMethod, ...] = ()
    ) -> None:
        unknown = [m for m in strong_ids if m not in _STRONG_FIELDS]
        if unknown:
            raise ValueError(f"not a strong identifier: {', '.join(unknown)}")
        self._strong_ids = strong_ids
        self._by_id: dict[MatchMethod, dict[str, list[PersonRecord]]] = {
            method: defaultdict(list) for method in strong_ids
        }
        self._by_dob_postcode: dict[tuple[date, str], list[_Indexed]] = defaultdict(list)
        self._count = 0
        for person in people:
            self._count += 1
            for method in strong_ids:
                value = getattr(person, _STRONG_FIELDS[method])
                if value is not None:
                    self._by_id[method][value].append(person)
            given, family = normalise_name(person.given_name), normalise_name(person.family_name)
            if person.date_of_birth and person.postcode and given and family:
                key = (person.date_of_birth, person.postcode)
                self._by_dob_postcode[key].append(_Indexed(person, given, family))

    def __len__(self) -> int:
        return self._count

    def match(self, subject: Subject) -> tuple[SubjectMatch, PersonRecord | None]:
        found = self._by_strong_id(subject)
        if found is None:
            found = self._by_name_dob_postcode(subject)
        if isinstance(found, _Refused):
            return _unmatched(subject, found.conflict), None
        if found is None:
            return _unmatched(subject), None
        return (
            SubjectMatch(
                subject_id=subject.subject_id,
                matched=True,
                method=found.method,
                confidence=found.confidence,
                record_id=found.record.record_id,
            ),
            found.record,
        )

    def match_all(self, subjects: Sequence[Subject]) -> RequestMatch:
        results = [(subject, *self.match(subject)) for subject in subjects]
        claims: dict[str, int] = defaultdict(int)
        for _, _, record in results:
            if record is not None:
                claims[record.record_id] += 1
        matches: list[SubjectMatch] = []
        matched: list[MatchedSubject] = []
        for subject, match, record in results:
            if record is None:
                matches.append(match)  # keeps an identifier conflict for the packet
                continue
            if claims[record.record_id] > 1:
                matches.append(_unmatched(subject))
                continue
            matches.append(match)
            matched.append(MatchedSubject(subject, record, match))
        return RequestMatch(matches, matched)

    def _subject_ids(self, subject: Subject) -> dict[MatchMethod, str]:
        ids: dict[MatchMethod, str] = {}
        for method in self._strong_ids:
            value = _compact_id(getattr(subject, _STRONG_FIELDS[method]))
            if value is not None:
                ids[method] = value
        return ids

    @staticmethod
    def _conflict(ids: Mapping[MatchMethod, str], record: PersonRecord) -> MatchMethod | None:
        """The subject's identifier the record holds a different value of, if any."""
        for method, value in ids.items():
            held = getattr(record, _STRONG_FIELDS[method])
            if held is not None and held != value:
                return method
        return None

    def _by_strong_id(self, subject: Subject) -> _Found | _Refused | None:
        """The record the subject's identifiers point at, when its own date of birth and name
        corroborate it; refused when they do not, when the identifiers point at more than
        one record, or at one whose other identifier disagrees, because nobody can then say
        from the records alone who is who."""
        ids = self._subject_ids(subject)
        hits: dict[str, tuple[PersonRecord, MatchMethod]] = {}
        for method, value in ids.items():
            records = self._by_id[method].get(value, [])
            if len(records) > 1:
                return _Refused(method)  # a duplicated identifier: the agency's data needs fixing
            for record in records:
                hits.setdefault(record.record_id, (record, method))
        if not hits:
            return None
        if len(hits) > 1:
            return _Refused(next(iter(hits.values()))[1])
        record, method = next(iter(hits.values()))
        other = self._conflict(ids, record)
        if other is not None:
            return _Refused(other)
        if not corroborates(subject, record):
            return _Refused(method)
        return _Found(record, method, 1.0)

    def _by_name_dob_postcode(self, subject: Subject) -> _Found | _Refused | None:
        given, family = normalise_name(subject.given_name), normalise_name(subject.family_name)
        if not (given and family and subject.date_of_birth and subject.postcode):
            return None
        ids = self._subject_ids(subject)
        key = (subject.date_of_birth, normalise_postcode(subject.postcode))
        scored = sorted(
            (
                (name_similarity(given, family, c.given, c.family), c.record)
                for c in self._by_dob_postcode.get(key, [])
                if same_name(given, family, c.given, c.family)
            ),
            key=lambda pair: pair[0],
            reverse=True,
        )
        qualifying = scored  # same_name holds the similarity threshold
        for _, record in qualifying:
            # The details point at a record whose identifier is not the subject's: the
            # identifier and the details disagree, which is for a person to settle.
            conflict = self._conflict(ids, record)
            if conflict is not None:
                return _Refused(conflict)
        if not qualifying:
            return None
        best_score, best = qualifying[0]
        if len(qualifying) > 1 and best_score - qualifying[1][0] < CLEAR_MARGIN:
            return None
        return _Found(best, MatchMethod.NAME_DOB_POSTCODE, _confidence(best_score))


def _unmatched(subject: Subject, conflict: MatchMethod | None = None) -> SubjectMatch:
    return SubjectMatch(
        subject_id=subject.subject_id,
        matched=False,
        method=MatchMethod.NONE,
        confidence=0.0,
        identifier_conflict=conflict,
    )


# --- Strengths and engagement ---------------------------------------------------------------


@dataclass(frozen=True)
class Assessment:
    """What an agency records about how a person engages, and what is going well."""

    strengths: tuple[str, ...] = ()
    engagement: Engagement = Engagement.UNKNOWN
    notes: str | None = None


# The screen needs the weakest engagement in the household: a family that engages "well"
# through one parent and "not at all" through the other is not a family that engages well.
_ENGAGEMENT_ORDER: Mapping[Engagement, int] = {
    Engagement.DOES_NOT_ENGAGE: 0,
    Engagement.ENGAGES_PARTIALLY: 1,
    Engagement.ENGAGES_WELL: 2,
}


def combine_assessments(
    assessments: Iterable[Assessment],
) -> tuple[list[str], Engagement, str | None]:
    """Strengths (in order, once each), the lowest known engagement, and the notes."""
    strengths: dict[str, None] = {}
    notes: dict[str, None] = {}
    levels: list[Engagement] = []
    for assessment in assessments:
        strengths.update(dict.fromkeys(assessment.strengths))
        if assessment.notes:
            notes[assessment.notes] = None
        if assessment.engagement in _ENGAGEMENT_ORDER:
            levels.append(assessment.engagement)
    engagement = min(levels, key=_ENGAGEMENT_ORDER.__getitem__, default=Engagement.UNKNOWN)
    return list(strengths), engagement, "; ".join(notes) or None


# --- CSV exports ----------------------------------------------------------------------------

E = TypeVar("E", bound=StrEnum)


def parse_date(value: str, *, path: Path | str, line: int, column: str, unit: str = "line") -> date:
    """An ISO date (YYYY-MM-DD); a bad value names the file, line and column, not the value."""
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        # The value itself is left out: it may be a date of birth.
        raise ValueError(
            f"{path}, {unit} {line}, column {column!r}: not an ISO date (YYYY-MM-DD)"
        ) from None


@dataclass(frozen=True)
class CsvRow:
    """One row of an export, able to say where it came from when a value is bad.

    A database's rows are read the same way (``adapters.kit.sources.sql``): ``path`` is then
    the query (``query 'people'``), ``line`` the row's number in its result and ``unit``
    ``"row"``, and every value is text as a CSV cell is, so an agency's code reads both alike.
    """

    path: Path | str
    line: int
    values: Mapping[str, str] = field(default_factory=dict)
    unit: str = "line"

    def error(self, column: str, problem: str) -> ValueError:
        # Never the value: exports hold names, dates of birth and addresses.
        return ValueError(f"{self.path}, {self.unit} {self.line}, column {column!r}: {problem}")

    def optional(self, column: str) -> str | None:
        return self.values.get(column)

    def text(self, column: str) -> str:
        value = self.values.get(column)
        if value is None:
            raise self.error(column, "a value is required")
        return value

    def optional_date(self, column: str) -> date | None:
        value = self.values.get(column)
        return (
            None
            if value is None
            else parse_date(value, path=self.path, line=self.line, column=column, unit=self.unit)
        )

    def required_date(self, column: str) -> date:
        return parse_date(
            self.text(column), path=self.path, line=self.line, column=column, unit=self.unit
        )

    def integer(self, column: str) -> int:
        try:
            return int(self.text(column))
        except ValueError:
            raise self.error(column, "not a whole number") from None

    def optional_integer(self, column: str) -> int | None:
        return None if self.values.get(column) is None else self.integer(column)

    def optional_number(self, column: str) -> float | None:
        value = self.values.get(column)
        if value is None:
            return None
        try:
            return float(value)
        except ValueError:
            raise self.error(column, "not a number") from None

    def boolean(self, column: str, default: bool = False) -> bool:
        value = self.values.get(column)
        if value is None:
            return default
        lowered = value.casefold()
        if lowered in ("true", "yes", "y", "1"):
            return True
        if lowered in ("false", "no", "n", "0"):
            return False
        raise self.error(column, "not true or false")

    def choice(self, column: str, kind: type[E]) -> E:
        value = self.text(column)
        try:
            return kind(value.upper())
        except ValueError:
            allowed = ", ".join(member.value for member in kind)
            raise self.error(column, f"not one of {allowed}") from None

    def optional_choice(self, column: str, kind: type[E]) -> E | None:
        return None if self.values.get(column) is None else self.choice(column, kind)

    def listing(self, column: str) -> tuple[str, ...]:
        """A semicolon-separated list, e.g. several strengths in one cell."""
        value = self.values.get(column)
        if value is None:
            return ()
        return tuple(part.strip() for part in value.split(";") if part.strip())

    def person(self, id_column: str) -> PersonRecord:
        """The columns every agency's people file shares, as a ``PersonRecord``."""
        return PersonRecord(
            record_id=self.text(id_column),
            given_name=self.text("given_name"),
            family_name=self.text("family_name"),
            date_of_birth=self.optional_date("date_of_birth"),
            postcode=self.optional("postcode"),
            household_id=self.text("household_id"),
            nhs_number=self.optional("nhs_number"),
            upn=self.optional("upn"),
            la_child_id=self.optional("la_child_id"),
        )

    def assessment(self) -> Assessment:
        return Assessment(
            strengths=self.listing("strengths"),
            engagement=self.optional_choice("engagement", Engagement) or Engagement.UNKNOWN,
            notes=self.optional("engagement_notes"),
        )


def _iter_rows(path: Path, required: Sequence[str]) -> Iterator[CsvRow]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [column for column in required if column not in header]
            if missing:
                raise ValueError(f"{path}, line 1: missing column(s) {', '.join(missing)}")
            for raw in reader:
                if None in raw:
                    raise ValueError(f"{path}, line {reader.line_num}: more cells than columns")
                # An empty cell is a missing value, so "optional" means the same in every file.
                values = {k: v.strip() for k, v in raw.items() if v is not None and v.strip()}
                yield CsvRow(path, reader.line_num, values)
    except FileNotFoundError:
        raise ValueError(f"{path}: file not found") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text") from None
    except csv.Error as exc:
        raise ValueError(f"{path}: not a readable CSV file ({exc})") from None


def read_rows(path: Path | str, required: Sequence[str] = ()) -> list[CsvRow]:
    """Every row of a CSV export, each knowing its file and line for error messages."""
    return list(_iter_rows(Path(path), required))


def read_csv(path: Path | str) -> list[dict[str, str]]:
    """A CSV export as dictionaries; empty cells are left out rather than kept as ``""``."""
    return [dict(row.values) for row in read_rows(path)]


PERSON_COLUMNS = ("given_name", "family_name", "date_of_birth", "postcode", "household_id")
"""Columns every agency's people file has, beside its own id column."""


class ExportError(MashError, ValueError):
    """Everything found wrong with an export folder at once, one line per problem, so that
    an agency's IT team fixes them in one go rather than one start-up at a time."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class ExportFile:
    """One file of an agency's export and the columns its adapter reads from it."""

    name: str
    columns: tuple[str, ...]
    optional: bool = False  # e.g. restricted intelligence, which not every agency shares


def _header_problem(path: Path, columns: Sequence[str]) -> str | None:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), None)
    except UnicodeDecodeError:
        return f"{path}: not UTF-8 text"
    except csv.Error as exc:
        return f"{path}: not a readable CSV file ({exc})"
    except OSError as exc:
        return f"{path}: cannot be read ({exc.strerror})"
    if header is None:
        return f"{path}: empty, a header row is required"
    missing = [column for column in columns if column not in header]
    if missing:
        return f"{path}, line 1: missing column(s) {', '.join(missing)}"
    return None


def check_export(folder: Path, files: Iterable[ExportFile]) -> None:
    """Check that ``folder`` holds every file with its columns before any row is read;
    :class:`ExportError` lists every missing file and column. A bad value in a row is found
    as the files are read, and named by file, line and column."""
    if not folder.is_dir():
        raise ExportError([f"{folder}: no such folder"])
    problems: list[str] = []
    for export in files:
        path = folder / export.name
        if not path.is_file():
            if not export.optional:
                problems.append(f"{path}: file not found")
            continue
        problem = _header_problem(path, export.columns)
        if problem is not None:
            problems.append(problem)
    if problems:
        raise ExportError(problems)


class PeopleExport:
    """An agency's people file: records by id and by household, and what it says of each.

    The file is read once and checked: a repeated id, or a missing or bad value, raises
    ``ValueError`` naming the file, line and column. :meth:`from_rows` builds the same from
    rows read elsewhere (a database query).
    """

    def __init__(self, path: Path, id_column: str, required: Sequence[str] = ()) -> None:
        self._load(path.name, read_rows(path, (id_column, *PERSON_COLUMNS, *required)), id_column)
        self.path = path
        self.partial = False

    @classmethod
    def from_rows(
        cls, label: str, rows: Iterable[CsvRow], id_column: str, *, partial: bool = False
    ) -> PeopleExport:
        """People from rows already read. ``partial``: the rows are only the people a request
        is about (a database is asked for those, not for everyone), so a reference to
        someone else is not an error: nothing about them is ever looked up."""
        people = cls.__new__(cls)
        people._load(label, rows, id_column)
        people.path = Path(label)
        people.partial = partial
        return people

    def _load(self, label: str, rows: Iterable[CsvRow], id_column: str) -> None:
        self.label = label
        self.records: dict[str, PersonRecord] = {}
        self.rows: dict[str, CsvRow] = {}
        self._assessments: dict[str, Assessment] = {}
        self._households: dict[str, list[PersonRecord]] = defaultdict(list)
        for row in rows:
            record = row.person(id_column)
            if record.record_id in self.records:
                raise row.error(id_column, f"the same id appears on an earlier {row.unit}")
            self.records[record.record_id] = record
            self.rows[record.record_id] = row
            self._assessments[record.record_id] = row.assessment()
            self._households[record.household_id].append(record)

    def __len__(self) -> int:
        return len(self.records)

    def reference(self, row: CsvRow, column: str) -> str:
        """The person id in ``column`` of another file, checked to be in this one."""
        value = row.text(column)
        if value not in self.records and not self.partial:
            raise row.error(column, f"no such person in {self.label}")
        return value

    def members(self, household_ids: Iterable[str]) -> list[PersonRecord]:
        return [person for h in household_ids for person in self._households.get(h, [])]

    def assessments(self, household_ids: Iterable[str]) -> list[Assessment]:
        return [self._assessments[p.record_id] for p in self.members(household_ids)]


class ExportFolder:
    """An agency's export folder, checked as a whole on opening (:func:`check_export`), whose
    files are then read with the columns declared for them: the one place they are named."""

    def __init__(self, folder: Path, files: Sequence[ExportFile]) -> None:
        check_export(folder, files)
        self.folder = folder
        self._files = {export.name: export for export in files}

    def has(self, name: str) -> bool:
        return (self.folder / self._files[name].name).is_file()

    def rows(self, name: str) -> list[CsvRow]:
        return read_rows(self.folder / name, self._files[name].columns)

    def people(self, name: str, id_column: str) -> PeopleExport:
        return PeopleExport(self.folder / name, id_column, self._files[name].columns)
