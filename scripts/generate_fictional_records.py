"""Write the fictional agency exports in ``adapters/<agency>/data/``.

Every person here is invented. Names are drawn from lists of common first names and
surnames, streets are made up, postcodes are in the non-existent "ZX" area, NHS numbers are
in the 999 range (never issued to patients) with a valid check digit, and Unique Pupil
Numbers use local authority code 302 with a valid check letter. There are no phone numbers
and no real addresses.

The households overlap across the agencies the way real ones do: health knows nearly
everyone registered with a GP, education knows school-age children, police a minority of
households, housing social and temporary tenants and people who approached it as homeless,
and children's social care the families with earlier contacts, open cases and allocated
workers (more often those police know).
Each agency uses its own record and household ids and writes names and postcodes its own
way (surnames in capitals, a middle name, a hyphen, a postcode without its space), so that
adapters have to match people the way the MASH does.

Two households replay the case studies of the London MASH report: a 17-year-old after a
drugs warrant, and an unborn baby whose mother's earlier children were taken into care.
A few ordinary households sit beside them; ``examples/contacts/`` refers to all of these.

The output is deterministic: the same seed writes the same files byte for byte.

    python scripts/generate_fictional_records.py [--out adapters] [--seed 20260302]
"""

from __future__ import annotations

import argparse
import csv
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

EXPORT_DATE = date(2026, 11, 23)
"""The day the exports were taken; ages, school years and pregnancies are as of this day."""

SCHOOL_YEAR_START = 2026  # the 2026/27 school year
DEFAULT_SEED = 20260302
RANDOM_HOUSEHOLDS = 144
LA_CODE = "302"
REPO = Path(__file__).resolve().parent.parent


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


BOYS = _words(
    "Oliver George Harry Jack Jacob Noah Charlie Muhammad Thomas Oscar William James Leo "
    "Alfie Henry Joshua Freddie Archie Ethan Isaac Alexander Joseph Edward Samuel Max Logan "
    "Lucas Daniel Theo Arthur Mason Harrison Adam Dylan Finley Riley Tyler Kai Zachary Aaron"
)
GIRLS = _words(
    "Olivia Amelia Isla Ava Mia Isabella Sophia Grace Lily Freya Emily Ivy Ella Rosie Evie "
    "Florence Poppy Charlotte Willow Sienna Daisy Phoebe Chloe Jessica Ruby Layla Sofia Zara "
    "Hannah Aisha Maya Leah Erin Holly Megan Lucy Amber Katie Niamh Eloise"
)
MEN = _words(
    "David Paul Mark Andrew Richard Daniel Christopher Michael Lee Darren Craig Stephen Jason "
    "Gary Adrian Imran Tomasz Kwame Dean Scott Ryan Carl Matthew Neil Jamal"
)
WOMEN = _words(
    "Sarah Emma Laura Rebecca Claire Nicola Gemma Kirsty Joanne Lisa Michelle Stacey Natalie "
    "Hayley Amanda Fatima Agnieszka Ama Samantha Victoria Rachel Leanne Shanice Kelly Zainab"
)
MIDDLE_BOYS = _words("James John Michael Lee Thomas Anthony Robert Ali")
MIDDLE_GIRLS = _words("Louise Marie Rose Jane Grace Elizabeth May Anne")
SURNAMES = _words(
    "Smith Jones Williams Taylor Brown Davies Evans Wilson Thomas Johnson Roberts Robinson "
    "Thompson Wright Walker White Edwards Hughes Green Hall Lewis Harris Clarke Patel Jackson "
    "Wood Turner Martin Cooper Hill Ward Morris Moore Clark Lee King Baker Harrison Morgan "
    "Allen James Scott Phillips Watson Davis Parker Bennett Young Griffiths Mitchell Kelly "
    "Cook Carter Richardson Bailey Collins Bell Shaw Murphy Miller Cox Richards Khan Marshall "
    "Anderson Simpson Ellis Adams Singh Begum Wilkinson Foster Chapman Powell Webb Rogers "
    "Gray Mason Ali Hunt Hussain Campbell Matthews Owen Palmer Holmes Mills Barnes Knight "
    "Lloyd Butler Russell Barker Fisher Stevens Jenkins Murray Dixon Harvey O'Brien Okafor "
    "Mensah Kowalski"
)
STREETS = (
    "Amberfold Close",
    "Brackenhythe Road",
    "Cindergate Street",
    "Dovecote Rise",
    "Elderwick Way",
    "Fennimore Crescent",
    "Gorsebrook Avenue",
    "Hollinsend Walk",
    "Juniper Ghyll",
    "Lanternhill Court",
    "Marrowfield Place",
    "Orchardine Terrace",
    "Pipistrelle Close",
    "Quillfeather Lane",
    "Rushmeadow Parade",
    "Saltmarrow Road",
    "Thistlecombe Drive",
    "Umberwell Street",
    "Vellacott Gardens",
    "Wrenhollow Lane",
)
# Letters never used in the inward code of a UK postcode.
INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
# Postcodes of the scripted households and the family nobody knows; random ones avoid them.
RESERVED_POSTCODES = {"ZX4 7QD", "ZX9 2LN", "ZX2 5HB", "ZX6 1EJ", "ZX3 8PA", "ZX8 3WT"}


@dataclass(frozen=True)
class School:
    name: str
    dfe_number: int  # the school's establishment number: the middle of a UPN it issues


PRIMARIES = (
    School("Larkspur Primary School", 2041),
    School("Dovecote Rise Primary School", 2057),
    School("Elderwick Church of England Primary School", 3312),
    School("Gorsebrook Infant and Junior School", 2068),
)
SECONDARIES = (
    School("Ambervale Academy", 4120),
    School("Kestrelmoor High School", 4133),
    School("Brackenhythe School", 4147),
)
SIXTH_FORM = School("Marrowfield Sixth Form College", 4801)
PRACTICES = (
    "Larkspur Medical Centre",
    "Marrowfield Surgery",
    "Fennimore Health Centre",
    "Orchardine Family Practice",
)


# --- The world: households and people before any agency writes them down ------------------


@dataclass
class Person:
    key: str
    given: str
    family: str
    dob: date
    sex: str  # "F" or "M"
    relationship: str  # to the lead tenant / head of household, as housing records it
    family_role: str  # to the children, as police describe an adult posing risk
    middle: str | None = None
    nhs: str | None = None
    upn: str | None = None
    school: School | None = None
    gp_registered: bool = True

    def age(self, on: date = EXPORT_DATE) -> int:
        born = self.dob
        return on.year - born.year - ((on.month, on.day) < (born.month, born.day))

    @property
    def adult(self) -> bool:
        return self.age() >= 18

    @property
    def year_group(self) -> int | None:
        """Reception is 0; the school year a child is in during 2026/27, if of school age."""
        started = self.dob.year + (4 if self.dob.month <= 8 else 5)
        year = SCHOOL_YEAR_START - started
        return year if 0 <= year <= 13 else None


Assessment = tuple[str, str, str]  # strengths (";"-separated), engagement, notes


@dataclass
class Script:
    """What the agencies know about a scripted household, written out by hand."""

    police_people: list[str] = field(default_factory=list)
    incidents: list[tuple[date, str, str, list[str]]] = field(default_factory=list)
    call_outs: list[tuple[date, str, bool]] = field(default_factory=list)
    risk_adults: list[tuple[str, str, str]] = field(default_factory=list)
    # Police information shared with the MASH but not beyond it: the restricted file.
    restricted: list[tuple[str, str, str]] = field(default_factory=list)
    admissions: list[tuple[str, date, str]] = field(default_factory=list)
    ae: list[tuple[str, date, str]] = field(default_factory=list)
    missed: list[tuple[str, date, str]] = field(default_factory=list)
    pregnancy: tuple[str, int, bool, bool] | None = None  # person, weeks, in care, booked
    health_visiting: tuple[str, str] | None = None
    attendance: dict[str, float] = field(default_factory=dict)
    exclusions: list[tuple[str, date, str, int, str]] = field(default_factory=list)
    safeguarding: list[tuple[str, date, str]] = field(default_factory=list)
    sen: list[tuple[str, str, str]] = field(default_factory=list)
    tenancy: tuple[str, date | None, int, bool, float | None] | None = None
    homelessness: list[tuple[date, str, str]] = field(default_factory=list)
    asb: list[tuple[date, str]] = field(default_factory=list)
    assessments: dict[tuple[str, str], Assessment] = field(default_factory=dict)
    # Children's social care: earlier contacts (person, received, source, category, outcome,
    # referral), open cases (person, type, opened), plans (person, category, start, end) and
    # the allocated worker (person, worker, team, role, allocated on).
    sc_contacts: list[tuple[str, date, str, str, str, bool]] = field(default_factory=list)
    sc_cases: list[tuple[str, str, date]] = field(default_factory=list)
    sc_plans: list[tuple[str, str, date, date | None]] = field(default_factory=list)
    sc_allocations: list[tuple[str, str, str, str, date]] = field(default_factory=list)

    @property
    def social_care(self) -> bool:
        return bool(self.sc_contacts or self.sc_cases or self.sc_plans or self.sc_allocations)


@dataclass
class Household:
    key: str
    postcode: str
    address: str
    practice: str
    people: list[Person]
    police: bool = False
    tenure: str | None = None  # housing's view; None when housing does not know them
    script: Script | None = None


def nhs_check_digit(body: str) -> int | None:
    """Modulus 11 over the first nine digits; None when no check digit exists (10)."""
    total = sum(int(digit) * weight for digit, weight in zip(body, range(10, 1, -1), strict=True))
    check = 11 - total % 11
    return 0 if check == 11 else None if check == 10 else check


def nhs_number(body: str) -> str:
    check = nhs_check_digit(body)
    if check is None:
        raise ValueError("this NHS number body has no valid check digit")
    return f"{body}{check}"


_UPN_ALPHABET = "ABCDEFGHJKLMNPQRTUVWXYZ0123456789"


def upn(school: School, year: int, serial: int) -> str:
    """Check letter, LA code, the issuing school's number, issue year, serial."""
    body = f"{LA_CODE}{school.dfe_number:04d}{year % 100:02d}{serial:03d}"
    check = sum(i * _UPN_ALPHABET.index(c) for i, c in enumerate(body, 2)) % 23
    return _UPN_ALPHABET[check] + body


class World:
    """Every household, random and scripted, with identifiers assigned."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.households: list[Household] = []
        self._people = 0
        self._nhs_used: set[str] = set()
        self._upn_serials: dict[tuple[int, int], int] = {}
        self._house_numbers: dict[str, int] = {}
        self.postcodes = self._postcodes(60)

    # Identifiers -----------------------------------------------------------------------

    def person_key(self) -> str:
        self._people += 1
        return f"p{self._people:04d}"

    def new_nhs(self) -> str:
        while True:
            body = "999" + "".join(str(self.rng.randrange(10)) for _ in range(6))
            check = nhs_check_digit(body)
            if check is not None and f"{body}{check}" not in self._nhs_used:
                self._nhs_used.add(f"{body}{check}")
                return f"{body}{check}"

    def fixed_nhs(self, body: str) -> str:
        number = nhs_number(body)
        self._nhs_used.add(number)
        return number

    def enrol(self, person: Person, first_school: School, school: School) -> None:
        """A UPN issued by the child's first school in the year they started Reception."""
        started = person.dob.year + (4 if person.dob.month <= 8 else 5)
        key = (first_school.dfe_number, started)
        self._upn_serials[key] = self._upn_serials.get(key, 0) + 1
        person.upn = upn(first_school, started, self._upn_serials[key])
        person.school = school

    # Places ----------------------------------------------------------------------------

    def _postcodes(self, count: int) -> list[str]:
        found: list[str] = []
        while len(found) < count:
            district = self.rng.randint(1, 9)
            inward = (
                f"{self.rng.randint(1, 9)}"
                f"{self.rng.choice(INWARD_LETTERS)}{self.rng.choice(INWARD_LETTERS)}"
            )
            postcode = f"ZX{district} {inward}"
            if postcode not in found and postcode not in RESERVED_POSTCODES:
                found.append(postcode)
        return found

    def address_in(self, postcode: str) -> str:
        street = STREETS[sum(map(ord, postcode)) % len(STREETS)]
        number = self._house_numbers.get(postcode, self.rng.randint(1, 40)) + 2
        self._house_numbers[postcode] = number
        return f"{number} {street}"

    # Random households ------------------------------------------------------------------

    def random_household(self, index: int) -> Household:
        rng = self.rng
        family = rng.choice(SURNAMES)
        if rng.random() < 0.05:
            family = f"{family}-{rng.choice(SURNAMES)}"
        kind = rng.choices(
            ["single", "couple", "step", "grandparent", "adults"], weights=[33, 40, 10, 5, 12]
        )[0]
        people: list[Person] = []
        mother_dob = self._adult_dob(1980, 2002)
        if kind == "grandparent":
            people.append(self._person(WOMEN, family, self._adult_dob(1956, 1970), "F", "lead"))
            people[0].relationship, people[0].family_role = "lead tenant", "grandmother"
        elif kind == "single" and rng.random() < 0.15:
            people.append(self._person(MEN, family, mother_dob, "M", "lead"))
            people[0].family_role = "father"
        else:
            people.append(self._person(WOMEN, family, mother_dob, "F", "lead"))
            people[0].family_role = "mother"
        if kind in ("couple", "step") or (kind == "adults" and rng.random() < 0.5):
            partner_family = rng.choice(SURNAMES) if kind == "step" else family
            partner = self._person(MEN, partner_family, self._adult_dob(1976, 2001), "M", "")
            partner.relationship = "partner"
            partner.family_role = {"step": "stepfather", "adults": "partner"}.get(kind, "father")
            people.append(partner)
        if kind != "adults":
            count = rng.choices([1, 2, 3, 4], weights=[40, 35, 18, 7])[0]
            earliest = max(people[0].dob.year + 18, 2008)
            for n in range(count):
                child_family = family
                if kind == "step" and n == count - 1 and count > 1:
                    child_family = people[1].family  # a younger half-sibling
                sex = rng.choice("FM")
                born = self._child_dob(earliest)
                if n > 0 and rng.random() < 0.05:
                    born = people[-1].dob  # twins
                child = self._person(GIRLS if sex == "F" else BOYS, child_family, born, sex, "")
                if kind == "grandparent":
                    child.relationship = "granddaughter" if sex == "F" else "grandson"
                else:
                    child.relationship = "daughter" if sex == "F" else "son"
                child.family_role = "child"
                people.append(child)
        postcode = rng.choice(self.postcodes)
        household = Household(
            key=f"h{index:03d}",
            postcode=postcode,
            address=self.address_in(postcode),
            practice=rng.choice(PRACTICES),
            people=people,
            police=rng.random() < 0.2,
            tenure=rng.choices(
                [None, "COUNCIL", "HOUSING_ASSOCIATION", "TEMPORARY_ACCOMMODATION"],
                weights=[60, 18, 15, 7],
            )[0],
        )
        for person in people:
            person.gp_registered = rng.random() > 0.03
            if person.gp_registered:
                person.nhs = self.new_nhs()
            self._maybe_enrol(person, household)
        return household

    def _maybe_enrol(self, person: Person, household: Household) -> None:
        year = person.year_group
        if year is None or (year >= 12 and self.rng.random() < 0.25):
            return
        index = sum(map(ord, household.postcode))
        primary = PRIMARIES[index % len(PRIMARIES)]
        if year <= 6:
            school = primary
        elif year <= 11:
            school = SECONDARIES[index % len(SECONDARIES)]
        else:
            school = SIXTH_FORM
        self.enrol(person, primary, school)

    def _person(self, names: Sequence[str], family: str, dob: date, sex: str, rel: str) -> Person:
        middles = MIDDLE_GIRLS if sex == "F" else MIDDLE_BOYS
        return Person(
            key=self.person_key(),
            given=self.rng.choice(names),
            family=family,
            dob=dob,
            sex=sex,
            relationship="lead tenant" if rel == "lead" else rel,
            family_role="",
            middle=self.rng.choice(middles) if self.rng.random() < 0.4 else None,
        )

    def _adult_dob(self, first_year: int, last_year: int) -> date:
        start = date(first_year, 1, 1)
        return start + timedelta(days=self.rng.randrange((date(last_year, 12, 31) - start).days))

    def _child_dob(self, first_year: int) -> date:
        start = date(first_year, 1, 1)
        return start + timedelta(days=self.rng.randrange((EXPORT_DATE - start).days - 30))


# --- The scripted households --------------------------------------------------------------


def scripted_households(world: World) -> list[Household]:
    return [
        _drugs_warrant(world),
        _unborn_baby(world),
        _school_attendance(world),
        _overcrowding(world),
        _baby_injury(world),
    ]


def _fixed(
    world: World,
    given: str,
    family: str,
    dob: date,
    sex: str,
    relationship: str,
    family_role: str,
    nhs_body: str,
    middle: str | None = None,
) -> Person:
    return Person(
        key=world.person_key(),
        given=given,
        family=family,
        dob=dob,
        sex=sex,
        relationship=relationship,
        family_role=family_role,
        middle=middle,
        nhs=world.fixed_nhs(nhs_body),
    )


def _drugs_warrant(world: World) -> Household:
    """Case study 1: a 17-year-old after a drugs warrant; younger half-siblings at home."""
    donna = _fixed(
        world, "Donna", "Holloway", date(1986, 4, 19), "F", "lead tenant", "mother", "999401234"
    )
    donna.middle = "Marie"
    wayne = _fixed(
        world, "Wayne", "Carver", date(1981, 7, 8), "M", "partner", "stepfather", "999401235"
    )
    reece = _fixed(world, "Reece", "Holloway", date(2009, 7, 26), "M", "son", "child", "999401236")
    reece.middle = "Anthony"
    mia = _fixed(world, "Mia", "Carver", date(2016, 2, 11), "F", "daughter", "child", "999401237")
    leo = _fixed(world, "Leo", "Carver", date(2019, 10, 7), "M", "son", "child", "999401239")
    world.enrol(reece, PRIMARIES[0], SIXTH_FORM)
    world.enrol(mia, PRIMARIES[0], PRIMARIES[0])
    world.enrol(leo, PRIMARIES[0], PRIMARIES[0])
    r, w, m, d, lo = reece.key, wayne.key, mia.key, donna.key, leo.key
    script = Script(
        police_people=[d, w, r],
        incidents=[
            (
                date(2019, 12, 5),
                "Supply of Class A drugs",
                "Convicted of supplying Class A drugs; four years' imprisonment, released 2022",
                [w],
            ),
            (date(2024, 7, 25), "Drugs possession", "Found in possession of cocaine", [w]),
            (
                date(2025, 3, 4),
                "Gang involvement",
                "Stopped with known gang associates; intelligence links him to a county lines "
                "drug supply group",
                [r],
            ),
            (
                date(2025, 10, 27),
                "Possession with intent to supply",
                "Arrested with wraps of cannabis and cash; released under investigation",
                [r],
            ),
            (
                date(2026, 6, 13),
                "Violence with injury",
                "Victim of a stabbing linked to a gang dispute; declined to assist police",
                [r],
            ),
            (
                date(2026, 11, 19),
                "Drugs warrant",
                "Misuse of Drugs Act warrant executed at the home address; Class A drugs and "
                "cash seized",
                [r, w],
            ),
        ],
        call_outs=[
            (date(2025, 5, 23), "Argument between adults at the address, children present", True),
            (
                date(2026, 9, 12),
                "Concern for welfare: neighbours report frequent short visits to the address",
                False,
            ),
        ],
        risk_adults=[
            (
                w,
                "stepfather",
                "Convicted Class A drug supplier; associates with an organised crime group "
                "supplying drugs from the address",
            )
        ],
        restricted=[
            (
                w,
                "Covert intelligence",
                "Graded intelligence that he keeps a firearm for the supply group at a second "
                "address; not to be disclosed outside the MASH",
            )
        ],
        admissions=[
            (r, date(2024, 3, 24), "Alcohol intoxication, found unconscious in a park"),
            (r, date(2024, 12, 1), "Facial injuries after an assault"),
            (r, date(2026, 6, 13), "Stab wound to the thigh"),
        ],
        ae=[
            (r, date(2026, 2, 7), "Laceration to the hand; account of how it happened varied"),
            (m, date(2025, 7, 1), "Asthma"),
        ],
        missed=[
            (lo, date(2026, 3, 5), "Audiology"),
            (m, date(2026, 7, 28), "Dental check-up"),
        ],
        attendance={r: 54.0, m: 91.2, lo: 94.6},
        exclusions=[
            (r, date(2024, 1, 30), "SUSPENSION", 5, "Fighting"),
            (r, date(2024, 10, 7), "PERMANENT", 0, "Carrying a knife on school premises"),
        ],
        safeguarding=[
            (
                r,
                date(2026, 6, 24),
                "College staff concerned he carries large sums of cash and has new expensive "
                "clothes",
            ),
            (
                m,
                date(2026, 11, 20),
                "Told her teacher police came into the house at night and she is scared to go home",
            ),
        ],
        sen=[(r, "SEN_SUPPORT", "Social, emotional and mental health needs")],
        sc_contacts=[
            (
                r,
                date(2025, 3, 6),
                "Police",
                "Child criminal exploitation",
                "Child and family assessment; closed to early help",
                True,
            ),
            (m, date(2025, 5, 24), "Police", "Domestic abuse", "No further action", False),
            (lo, date(2025, 5, 24), "Police", "Domestic abuse", "No further action", False),
            (
                r,
                date(2026, 6, 14),
                "Emergency department",
                "Child criminal exploitation",
                "Strategy discussion; section 47 enquiry, no plan",
                True,
            ),
        ],
        tenancy=("COUNCIL", date(2017, 4, 24), 3, False, 412.5),
        asb=[
            (
                date(2026, 8, 7),
                "Neighbours report visitors at all hours and suspected drug dealing from the "
                "address",
            )
        ],
        assessments={
            ("police", d): (
                "Mother cooperated with officers during the warrant",
                "ENGAGES_PARTIALLY",
                "",
            ),
            ("police", w): ("", "DOES_NOT_ENGAGE", "Stepfather refuses to speak to police"),
            ("police", r): ("", "DOES_NOT_ENGAGE", ""),
            ("health", d): (
                "The younger children's immunisations are up to date",
                "ENGAGES_PARTIALLY",
                "Young person does not attend follow-up appointments",
            ),
            ("education", m): ("Enjoys school and has a trusted adult in class", "", ""),
            ("education", lo): ("Good progress in reading", "ENGAGES_WELL", ""),
            ("education", r): ("", "DOES_NOT_ENGAGE", "Mother does not reply to the college"),
            ("housing", d): (
                "Rent paid by direct debit for most of the tenancy",
                "ENGAGES_PARTIALLY",
                "",
            ),
        },
    )
    return Household(
        key="case-drugs-warrant",
        postcode="ZX4 7QD",
        address="14 Larkspur Row",
        practice="Larkspur Medical Centre",
        people=[donna, wayne, reece, mia, leo],
        police=True,
        tenure="COUNCIL",
        script=script,
    )


def _unborn_baby(world: World) -> Household:
    """Case study 2: 13 weeks pregnant; earlier children in care after physical abuse."""
    mother = _fixed(
        world, "Chantelle", "Price", date(1996, 9, 3), "F", "lead tenant", "mother", "999402102"
    )
    c = mother.key
    script = Script(
        police_people=[c],
        incidents=[
            (
                date(2022, 12, 27),
                "Child cruelty",
                "Arrested on suspicion of physically assaulting her then 3-year-old child; "
                "the child was taken into police protection",
                [c],
            ),
            (
                date(2023, 10, 12),
                "Child cruelty",
                "Bruising found on her 18-month-old child at nursery; she was the suspect and "
                "both children were later placed in care",
                [c],
            ),
            (date(2026, 5, 5), "Theft", "Shoplifting from a chemist; charged", [c]),
            (
                date(2026, 8, 26),
                "Assault",
                "Assaulted a shop worker; charged and awaiting trial",
                [c],
            ),
            (date(2026, 11, 3), "Drugs possession", "Found in possession of cannabis", [c]),
        ],
        call_outs=[
            (date(2026, 8, 15), "Disturbance at the address; argument with a male visitor", True)
        ],
        risk_adults=[
            (
                c,
                "mother",
                "Her previous children were placed in care after physical abuse; current "
                "offending including violence",
            )
        ],
        restricted=[
            (
                c,
                "Live investigation",
                "Suspect in an open investigation by another force into an injury to a child; "
                "disclosure beyond the MASH could prejudice it",
            )
        ],
        ae=[(c, date(2026, 3, 27), "Facial bruising; said she fell")],
        missed=[
            (c, date(2026, 11, 9), "Antenatal booking appointment"),
            (c, date(2026, 11, 16), "Antenatal booking appointment (rearranged)"),
        ],
        pregnancy=(c, 13, True, False),
        sc_contacts=[
            (
                c,
                date(2022, 12, 28),
                "Police",
                "Physical abuse (older child)",
                "Section 47 enquiry; child protection plan",
                True,
            ),
            (
                c,
                date(2023, 10, 13),
                "Nursery",
                "Physical abuse (older child)",
                "Care proceedings; both children placed in care",
                True,
            ),
            (c, date(2026, 11, 10), "Midwife", "Unborn baby", "Pre-birth assessment", True),
        ],
        health_visiting=(
            "0-19 Health Visiting Team East",
            "Pre-birth referral received; Universal Partnership Plus involvement with her older "
            "children closed when they were placed in care",
        ),
        tenancy=("TEMPORARY_ACCOMMODATION", date(2026, 7, 23), 1, False, None),
        homelessness=[
            (
                date(2026, 7, 21),
                "Evicted from a private rented home for rent arrears",
                "Placed in temporary accommodation; main housing duty accepted",
            )
        ],
        assessments={
            ("police", c): ("", "DOES_NOT_ENGAGE", "Does not respond to police contact"),
            ("health", c): (
                "Told her GP she wants support to keep this baby",
                "ENGAGES_PARTIALLY",
                "Missed two antenatal booking appointments",
            ),
            ("housing", c): ("Keeps the room clean and tidy", "ENGAGES_PARTIALLY", ""),
        },
    )
    return Household(
        key="case-unborn-baby",
        postcode="ZX9 2LN",
        address="Room 6, Kestrelmoor House, Kestrelmoor Drive",
        practice="Marrowfield Surgery",
        people=[mother],
        police=True,
        tenure="TEMPORARY_ACCOMMODATION",
        script=script,
    )


def _school_attendance(world: World) -> Household:
    laura = _fixed(
        world,
        "Laura",
        "Bennett",
        date(1990, 1, 25),
        "F",
        "head of household",
        "mother",
        "999402103",
    )
    olivia = _fixed(
        world, "Olivia", "Bennett", date(2016, 11, 30), "F", "daughter", "child", "999402104"
    )
    noah = _fixed(world, "Noah", "Bennett", date(2021, 4, 22), "M", "son", "child", "999402105")
    world.enrol(olivia, PRIMARIES[1], PRIMARIES[1])
    world.enrol(noah, PRIMARIES[1], PRIMARIES[1])
    o, n = olivia.key, noah.key
    script = Script(
        missed=[(n, date(2026, 6, 11), "Speech and language therapy")],
        attendance={o: 81.5, n: 95.0},
        sc_contacts=[
            (o, date(2025, 11, 17), "School", "Attendance", "Information and advice", False),
            (o, date(2026, 3, 9), "School", "Attendance", "Early help", False),
        ],
        sc_cases=[(o, "EARLY_HELP", date(2026, 3, 16))],
        sc_allocations=[
            (
                o,
                "Hannah Okoye",
                "Early Help Locality Team West",
                "LEAD_PROFESSIONAL",
                date(2026, 3, 16),
            )
        ],
        assessments={
            ("education", o): (
                "Parent responds to attendance letters; Well liked by her class",
                "ENGAGES_WELL",
                "",
            ),
            ("health", laura.key): ("Attends appointments with the children", "ENGAGES_WELL", ""),
        },
    )
    return Household(
        key="ordinary-attendance",
        postcode="ZX2 5HB",
        address="7 Dovecote Rise",
        practice="Fennimore Health Centre",
        people=[laura, olivia, noah],
        script=script,
    )


def _overcrowding(world: World) -> Household:
    agnieszka = _fixed(
        world, "Agnieszka", "Nowak", date(1988, 5, 14), "F", "lead tenant", "mother", "999402106"
    )
    tomasz = _fixed(
        world, "Tomasz", "Nowak", date(1985, 10, 2), "M", "partner", "father", "999402107"
    )
    zoe = _fixed(world, "Zoë", "Nowak", date(2014, 8, 24), "F", "daughter", "child", "999402108")
    jakub = _fixed(world, "Jakub", "Nowak", date(2017, 11, 10), "M", "son", "child", "999405040")
    lena = _fixed(world, "Lena", "Nowak", date(2023, 5, 1), "F", "daughter", "child", "999405050")
    world.enrol(zoe, PRIMARIES[3], SECONDARIES[1])
    world.enrol(jakub, PRIMARIES[3], PRIMARIES[3])
    script = Script(
        attendance={zoe.key: 96.3, jakub.key: 97.1},
        health_visiting=("0-19 Health Visiting Team South", "Universal"),
        tenancy=("HOUSING_ASSOCIATION", date(2014, 11, 24), 2, True, 1260.0),
        homelessness=[
            (
                date(2026, 6, 8),
                "Overcrowding: five people in a two-bedroom flat",
                "Accepted onto the housing register, band B",
            )
        ],
        assessments={
            ("housing", agnieszka.key): (
                "Keeps the home in good order; Agreed a plan to clear the arrears",
                "ENGAGES_WELL",
                "",
            ),
            ("health", agnieszka.key): ("Immunisations up to date", "ENGAGES_WELL", ""),
            ("education", zoe.key): ("Helps look after her younger sister", "ENGAGES_WELL", ""),
        },
    )
    return Household(
        key="ordinary-overcrowding",
        postcode="ZX6 1EJ",
        address="Flat 4, 22 Gorsebrook Avenue",
        practice="Orchardine Family Practice",
        people=[agnieszka, tomasz, zoe, jakub, lena],
        tenure="HOUSING_ASSOCIATION",
        script=script,
    )


def _baby_injury(world: World) -> Household:
    stacey = _fixed(
        world, "Stacey", "Lewis", date(1999, 3, 3), "F", "head of household", "mother", "999405010"
    )
    ryan = _fixed(
        world, "Ryan", "Cooper", date(1997, 11, 19), "M", "partner", "father", "999405020"
    )
    harper = _fixed(
        world, "Harper", "Lewis", date(2026, 7, 13), "F", "daughter", "child", "999405030"
    )
    s, ry, h = stacey.key, ryan.key, harper.key
    script = Script(
        police_people=[s, ry],
        incidents=[
            (
                date(2026, 11, 7),
                "Domestic abuse",
                "Father arrested for assaulting the mother while the baby was in the room; "
                "released on bail",
                [ry, s],
            )
        ],
        call_outs=[
            (date(2026, 8, 23), "Neighbour reported shouting and a baby crying", True),
            (date(2026, 11, 7), "Mother called police reporting an assault", True),
        ],
        risk_adults=[
            (
                ry,
                "father",
                "Arrested for assaulting the mother in November 2026; previous domestic abuse "
                "against a former partner",
            )
        ],
        sc_contacts=[
            (h, date(2026, 8, 24), "Police", "Domestic abuse", "No further action", False)
        ],
        ae=[
            (h, date(2026, 10, 5), "Baby brought in after rolling off a sofa"),
            (h, date(2026, 11, 22), "Unexplained bruising to the face and upper arms"),
        ],
        missed=[
            (h, date(2026, 9, 7), "Immunisations (8 weeks)"),
            (h, date(2026, 10, 12), "Health visitor 12-week review"),
        ],
        health_visiting=(
            "0-19 Health Visiting Team North",
            "Universal Plus: mother's low mood and missed reviews",
        ),
        assessments={
            ("police", s): ("Called police promptly to protect the baby", "ENGAGES_WELL", ""),
            ("police", ry): ("", "DOES_NOT_ENGAGE", ""),
            ("health", s): ("", "ENGAGES_PARTIALLY", "Two missed appointments for the baby"),
        },
    )
    return Household(
        key="ordinary-baby-injury",
        postcode="ZX3 8PA",
        address="31 Wrenhollow Lane",
        practice="Larkspur Medical Centre",
        people=[stacey, ryan, harper],
        police=True,
        script=script,
    )


# --- Agency exports -------------------------------------------------------------------------

Row = dict[str, str]

POLICE_INCIDENTS = (
    ("Domestic abuse", "Verbal argument between adults at the address; no offences disclosed"),
    ("Criminal damage", "Damage to a neighbour's car; no further action"),
    ("Theft", "Shoplifting from a supermarket; community resolution"),
    ("Public order", "Shouting in the street late at night; words of advice"),
    ("Assault", "Fight outside a pub; the victim did not support a prosecution"),
    ("Drugs possession", "Found in possession of cannabis; drugs warning issued"),
)
POLICE_YOUTH_INCIDENTS = (
    ("Missing person", "Reported missing overnight; found safe the next day"),
    ("Anti-social behaviour", "Part of a group throwing stones at buses; words of advice"),
)
CALL_OUTS = (
    ("Neighbour reported shouting from the address", True),
    ("Concern for welfare call from a relative", False),
    ("Noise complaint", False),
    ("Report of an argument in the street outside the address", True),
    ("Suspected break-in; nothing taken", False),
)
RISK_SUMMARIES = (
    "Previous conviction for assault on a former partner",
    "Subject of a non-molestation order held by a former partner",
    "Known to police for violence when drunk",
    "Previous conviction for possession of an offensive weapon",
)
ADMISSIONS = (
    "Bronchiolitis",
    "Asthma attack",
    "Appendicitis",
    "Broken arm after a fall",
    "Gastroenteritis with dehydration",
    "Febrile convulsion",
    "Head injury after a fall",
)
AE_REASONS = (
    "Sprained ankle",
    "Cut to the head after a fall",
    "High temperature",
    "Swallowed a small object",
    "Asthma",
    "Burn to the hand from a kettle",
)
MISSED_SERVICES = (
    "Immunisations",
    "Dental check-up",
    "Paediatric outpatients",
    "GP review",
    "Speech and language therapy",
    "Child and adolescent mental health services",
    "Audiology",
)
HV_INVOLVEMENT = ("Universal", "Universal Plus: feeding support", "Universal Plus: low mood")
SUSPENSIONS = (
    "Persistent disruptive behaviour",
    "Physical assault against a pupil",
    "Verbal abuse towards staff",
    "Bullying",
)
SAFEGUARDING = (
    "Arrived hungry several days running",
    "Unexplained bruise on the arm; explanation accepted",
    "Worries about a parent's drinking",
    "Online contact from an unknown adult",
)
NEEDS = (
    "Speech, language and communication needs",
    "Specific learning difficulty (dyslexia)",
    "Autism spectrum condition",
    "Social, emotional and mental health needs",
    "Moderate learning difficulty",
)
HOMELESSNESS = (
    ("End of a private tenancy (section 21 notice)", "Prevention duty: moved with a deposit"),
    ("Family no longer willing to accommodate", "Relief duty: housing association home"),
    ("Domestic abuse", "Placed in temporary accommodation"),
    ("Rent arrears", "Advice given; case closed"),
)
ASB = (
    "Noise from loud music late at night",
    "Dispute with a neighbour over parking",
    "Rubbish left in the communal area",
    "Dog barking for long periods",
)
SC_SOURCES = (
    "School",
    "Police",
    "Health visitor",
    "GP",
    "Emergency department",
    "Neighbour",
    "Family member",
    "Housing",
)
SC_CATEGORIES = (
    "Neglect",
    "Domestic abuse",
    "Parental substance misuse",
    "Parental mental health",
    "Attendance",
    "Physical injury",
    "Behaviour",
    "Emotional wellbeing",
)
SC_OUTCOMES = (
    ("No further action", False),
    ("Information and advice", False),
    ("Early help", False),
    ("Child and family assessment", True),
    ("Strategy discussion; section 47 enquiry", True),
)
# Open case type, how often, the team that holds it and the role of the allocated worker.
SC_CASES = (
    ("EARLY_HELP", 20, ("Early Help Locality Team East", "Early Help Locality Team West")),
    ("CHILD_IN_NEED", 45, ("Children in Need Team North", "Children in Need Team South")),
    ("CHILD_PROTECTION", 25, ("Child Protection Team",)),
    ("LOOKED_AFTER", 10, ("Children in Care Team",)),
)
SC_PLAN_CATEGORIES = ("NEGLECT", "PHYSICAL_ABUSE", "EMOTIONAL_ABUSE", "SEXUAL_ABUSE")
# The workers are as invented as the families: names from the same lists.
SC_WORKERS = (
    "Amira Hassan",
    "Ben Whitfield",
    "Chloe Adebayo",
    "Daniel Frost",
    "Eleanor Grant",
    "Femi Oduya",
    "Gemma Lytton",
    "Harriet Sloane",
    "Isaac Mbeki",
    "Joanna Perrin",
)
STRENGTHS = {
    "police": (
        "Called police promptly to protect the children",
        "Cooperated fully with officers",
        "No further incidents since advice was given",
    ),
    "health": (
        "Immunisations up to date",
        "Attends appointments with the children",
        "Registered with a dentist",
        "Seeks medical help promptly",
    ),
    "education": (
        "Parents attend parents' evenings",
        "Good relationships with staff",
        "Takes part in after-school clubs",
        "Makes good progress in reading",
    ),
    "housing": (
        "Rent paid on time",
        "Keeps the home in good order",
        "Good relationships with neighbours",
        "Engaged with tenancy support",
    ),
    "social-care": (
        "Grandparents offer regular support",
        "Worked with the family support worker",
        "Children are well presented",
        "Parent asked for help early",
    ),
}
ENGAGEMENT = ("ENGAGES_WELL", "ENGAGES_PARTIALLY", "DOES_NOT_ENGAGE", "")

COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "police": {
        "people": _words(
            "person_id given_name family_name date_of_birth postcode household_id "
            "strengths engagement engagement_notes"
        ),
        "incidents": ("incident_id", "person_id", "occurred_on", "category", "summary"),
        "call_outs": ("call_out_id", "household_id", "occurred_on", "reason", "domestic_abuse"),
        "risk_adults": ("person_id", "relationship", "risk_summary"),
        "restricted_intelligence": ("intelligence_id", "person_id", "category", "summary"),
    },
    "health": {
        "patients": _words(
            "patient_id nhs_number given_name family_name date_of_birth postcode household_id "
            "gp_practice registered_since strengths engagement engagement_notes"
        ),
        "admissions": ("admission_id", "patient_id", "admitted_on", "reason"),
        "ae_attendances": ("attendance_id", "patient_id", "attended_on", "reason"),
        "missed_appointments": ("appointment_id", "patient_id", "due_on", "service"),
        "pregnancies": _words(
            "pregnancy_id patient_id weeks expected_date_of_delivery "
            "previous_children_in_care booked_antenatal"
        ),
        "health_visiting": ("household_id", "team", "involvement"),
    },
    "education": {
        "pupils": _words(
            "pupil_id upn given_name family_name date_of_birth postcode household_id school "
            "year_group attendance_percent strengths engagement engagement_notes"
        ),
        "exclusions": ("exclusion_id", "pupil_id", "excluded_on", "kind", "days", "reason"),
        "safeguarding": ("concern_id", "pupil_id", "raised_on", "summary"),
        "sen": ("pupil_id", "provision", "needs"),
    },
    "housing": {
        "residents": _words(
            "resident_id given_name family_name date_of_birth postcode household_id "
            "relationship strengths engagement engagement_notes"
        ),
        "tenancies": _words(
            "tenancy_id household_id tenure started_on address bedrooms overcrowded arrears_pounds"
        ),
        "homelessness": ("approach_id", "household_id", "presented_on", "reason", "outcome"),
        "asb": ("report_id", "household_id", "reported_on", "summary"),
    },
    "social-care": {
        "people": _words(
            "person_id la_child_id nhs_number given_name family_name date_of_birth postcode "
            "household_id strengths engagement engagement_notes"
        ),
        "contacts": _words("contact_id person_id received_on source category outcome referral"),
        "cases": ("case_id", "person_id", "case_type", "opened_on"),
        "plans": ("plan_id", "person_id", "category", "started_on", "ended_on"),
        "allocations": ("person_id", "worker_name", "team", "role", "allocated_on"),
    },
}


class Ids:
    """An agency's own ids: random numbers, so that no two agencies' ids line up."""

    def __init__(self, rng: random.Random, prefix: str, digits: int) -> None:
        self._rng, self._prefix, self._digits = rng, prefix, digits
        self._used: set[int] = set()
        self._given: dict[str, str] = {}

    def __call__(self, key: str | None = None) -> str:
        if key is not None and key in self._given:
            return self._given[key]
        while True:
            number = self._rng.randrange(10 ** (self._digits - 1), 10**self._digits)
            if number not in self._used:
                self._used.add(number)
                break
        value = f"{self._prefix}{number}"
        if key is not None:
            self._given[key] = value
        return value


class Export:
    """One agency's files, filled row by row."""

    def __init__(self, agency: str) -> None:
        self.agency = agency
        self.files: dict[str, list[Row]] = {name: [] for name in COLUMNS[agency]}

    def add(self, file: str, **values: object) -> None:
        columns = COLUMNS[self.agency][file]
        unknown = set(values) - set(columns)
        if unknown:
            raise KeyError(f"{self.agency}/{file}: unknown columns {sorted(unknown)}")
        self.files[file].append({c: _cell(values.get(c)) for c in columns})

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name, rows in self.files.items():
            first = COLUMNS[self.agency][name][0]
            rows.sort(key=lambda row: (row[first], *row.values()))
            with (folder / f"{name}.csv").open("w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(
                    handle, fieldnames=COLUMNS[self.agency][name], lineterminator="\n"
                )
                writer.writeheader()
                writer.writerows(rows)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".") if value % 1 else f"{value:.1f}"
    return str(value)


def _when(rng: random.Random, after: date, first_year: int = 2019) -> date:
    start = max(after, date(first_year, 1, 1))
    days = (EXPORT_DATE - start).days
    return start + timedelta(days=rng.randrange(max(days, 1)))


def _assessment(
    rng: random.Random, agency: str, household: Household, person: Person, chance: float
) -> Assessment:
    if household.script is not None:
        return household.script.assessments.get((agency, person.key), ("", "", ""))
    strengths = rng.sample(STRENGTHS[agency], k=rng.randint(1, 2)) if rng.random() < chance else []
    engagement = rng.choices(ENGAGEMENT, weights=[50, 20, 5, 25])[0]
    if not person.adult and agency != "education":
        engagement = ""  # how a family engages is recorded against the adults
    return "; ".join(strengths), engagement, ""


def _typo(rng: random.Random, name: str) -> str:
    # A doubled letter, the commonest keying slip; rare, so most records still match exactly.
    if rng.random() >= 0.03 or len(name) < 4:
        return name
    at = rng.randrange(1, len(name) - 1)
    return name[:at] + name[at] + name[at:]


def write_police(world: World, rng: random.Random, out: Path) -> Export:
    export, ids, places = Export("police"), Ids(rng, "PN", 6), Ids(rng, "LOC", 5)
    incident_ids, call_out_ids = Ids(rng, "INC", 7), Ids(rng, "CAD", 7)
    for household in world.households:
        if not household.police:
            continue
        script = household.script
        known = [p for p in household.people if script is None or p.key in script.police_people]
        for person in known:
            strengths, engagement, notes = _assessment(rng, "police", household, person, 0.3)
            postcode = household.postcode
            if rng.random() < 0.4:
                postcode = postcode.replace(" ", "")  # the command system drops the space
            export.add(
                "people",
                person_id=ids(person.key),
                given_name=person.given if script else _typo(rng, person.given),
                family_name=person.family.upper(),  # nominal records keep surnames in capitals
                date_of_birth=person.dob,
                postcode=postcode,
                household_id=places(household.key),
                strengths=strengths,
                engagement=engagement,
                engagement_notes=notes,
            )
        if script is not None:
            for occurred, category, summary, keys in script.incidents:
                incident = incident_ids()
                for key in keys:
                    export.add(
                        "incidents",
                        incident_id=incident,
                        person_id=ids(key),
                        occurred_on=occurred,
                        category=category,
                        summary=summary,
                    )
            for occurred, reason, domestic in script.call_outs:
                export.add(
                    "call_outs",
                    call_out_id=call_out_ids(),
                    household_id=places(household.key),
                    occurred_on=occurred,
                    reason=reason,
                    domestic_abuse=domestic,
                )
            for key, relationship, summary in script.risk_adults:
                export.add(
                    "risk_adults",
                    person_id=ids(key),
                    relationship=relationship,
                    risk_summary=summary,
                )
            for number, (key, category, summary) in enumerate(script.restricted, start=1):
                export.add(
                    "restricted_intelligence",
                    intelligence_id=f"RI-{household.key}-{number}",
                    person_id=ids(key),
                    category=category,
                    summary=summary,
                )
            continue
        for person in known:
            if person.age() < 10 or rng.random() > 0.45:
                continue
            choices = POLICE_INCIDENTS if person.adult else POLICE_YOUTH_INCIDENTS
            for _ in range(rng.randint(1, 2)):
                category, summary = rng.choice(choices)
                export.add(
                    "incidents",
                    incident_id=incident_ids(),
                    person_id=ids(person.key),
                    occurred_on=_when(rng, person.dob + timedelta(days=3650)),
                    category=category,
                    summary=summary,
                )
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
            reason, domestic = rng.choice(CALL_OUTS)
            export.add(
                "call_outs",
                call_out_id=call_out_ids(),
                household_id=places(household.key),
                occurred_on=_when(rng, date(2019, 1, 1)),
                reason=reason,
                domestic_abuse=domestic,
            )
        adults = [p for p in known if p.adult and p.family_role in ("father", "stepfather")]
        if adults and rng.random() < 0.25:
            export.add(
                "risk_adults",
                person_id=ids(adults[0].key),
                relationship=adults[0].family_role,
                risk_summary=rng.choice(RISK_SUMMARIES),
            )
    export.write(out / "police" / "data")
    return export


def write_health(world: World, rng: random.Random, out: Path) -> Export:
    export, ids, families = Export("health"), Ids(rng, "PT", 7), Ids(rng, "FAM", 5)
    admission_ids, attendance_ids = Ids(rng, "ADM", 7), Ids(rng, "AE", 7)
    appointment_ids, pregnancy_ids = Ids(rng, "APT", 7), Ids(rng, "PRG", 6)
    random_pregnancies = 4
    for household in world.households:
        script = household.script
        registered = [p for p in household.people if p.gp_registered and p.nhs]
        for person in registered:
            strengths, engagement, notes = _assessment(rng, "health", household, person, 0.35)
            since = max(
                person.dob + timedelta(days=28),
                date(2008, 1, 1) + timedelta(days=rng.randrange(12 * 365)),
            )
            export.add(
                "patients",
                patient_id=ids(person.key),
                nhs_number=person.nhs,
                # GP systems hold the full registered name, middle names included.
                given_name=f"{person.given} {person.middle}" if person.middle else person.given,
                family_name=person.family,
                date_of_birth=person.dob,
                postcode=household.postcode,
                household_id=families(household.key),
                gp_practice=household.practice,
                registered_since=since,
                strengths=strengths,
                engagement=engagement,
                engagement_notes=notes,
            )
        if script is not None:
            for key, on, reason in script.admissions:
                export.add(
                    "admissions",
                    admission_id=admission_ids(),
                    patient_id=ids(key),
                    admitted_on=on,
                    reason=reason,
                )
            for key, on, reason in script.ae:
                export.add(
                    "ae_attendances",
                    attendance_id=attendance_ids(),
                    patient_id=ids(key),
                    attended_on=on,
                    reason=reason,
                )
            for key, on, service in script.missed:
                export.add(
                    "missed_appointments",
                    appointment_id=appointment_ids(),
                    patient_id=ids(key),
                    due_on=on,
                    service=service,
                )
            if script.pregnancy is not None:
                key, weeks, in_care, booked = script.pregnancy
                export.add(
                    "pregnancies",
                    pregnancy_id=pregnancy_ids(),
                    patient_id=ids(key),
                    weeks=weeks,
                    expected_date_of_delivery=EXPORT_DATE + timedelta(weeks=40 - weeks),
                    previous_children_in_care=in_care,
                    booked_antenatal=booked,
                )
            if script.health_visiting is not None:
                team, involvement = script.health_visiting
                export.add(
                    "health_visiting",
                    household_id=families(household.key),
                    team=team,
                    involvement=involvement,
                )
            continue
        for person in registered:
            born = person.dob
            if rng.random() < 0.07:
                export.add(
                    "admissions",
                    admission_id=admission_ids(),
                    patient_id=ids(person.key),
                    admitted_on=_when(rng, born),
                    reason=rng.choice(ADMISSIONS),
                )
            for _ in range(rng.choice([0] * 10 + [1, 1, 2])):
                export.add(
                    "ae_attendances",
                    attendance_id=attendance_ids(),
                    patient_id=ids(person.key),
                    attended_on=_when(rng, born),
                    reason=rng.choice(AE_REASONS),
                )
            if rng.random() < 0.12:
                export.add(
                    "missed_appointments",
                    appointment_id=appointment_ids(),
                    patient_id=ids(person.key),
                    due_on=_when(rng, born, 2024),
                    service=rng.choice(MISSED_SERVICES),
                )
        lead = household.people[0]
        if (
            random_pregnancies
            and lead.sex == "F"
            and lead in registered
            and lead.age() < 40
            and rng.random() < 0.1
        ):
            random_pregnancies -= 1
            weeks = rng.randint(8, 36)
            export.add(
                "pregnancies",
                pregnancy_id=pregnancy_ids(),
                patient_id=ids(lead.key),
                weeks=weeks,
                expected_date_of_delivery=EXPORT_DATE + timedelta(weeks=40 - weeks),
                previous_children_in_care=False,
                booked_antenatal=weeks >= 10,
            )
        if any(p.age() < 5 for p in household.people):
            export.add(
                "health_visiting",
                household_id=families(household.key),
                team=f"0-19 Health Visiting Team {rng.choice(['North', 'South', 'East'])}",
                involvement=rng.choice(HV_INVOLVEMENT),
            )
    export.write(out / "health" / "data")
    return export


def write_education(world: World, rng: random.Random, out: Path) -> Export:
    export, ids, families = Export("education"), Ids(rng, "PUP", 6), Ids(rng, "SIB", 5)
    exclusion_ids, concern_ids = Ids(rng, "EXC", 6), Ids(rng, "CPC", 6)
    for household in world.households:
        script = household.script
        pupils = [p for p in household.people if p.upn and p.school]
        for person in pupils:
            assert person.school is not None
            strengths, engagement, notes = _assessment(rng, "education", household, person, 0.4)
            if script is not None:
                attendance = script.attendance.get(person.key, 95.0)
            else:
                band = rng.choices([(92, 99.5), (80, 92), (65, 80)], weights=[80, 15, 5])[0]
                attendance = round(rng.uniform(*band), 1)
            export.add(
                "pupils",
                pupil_id=ids(person.key),
                upn=person.upn,
                given_name=person.given,
                family_name=person.family,
                date_of_birth=person.dob,
                postcode=household.postcode,
                household_id=families(household.key),
                school=person.school.name,
                year_group=person.year_group,
                attendance_percent=attendance,
                strengths=strengths,
                engagement=engagement,
                engagement_notes=notes,
            )
        if script is not None:
            for key, on, kind, days, reason in script.exclusions:
                export.add(
                    "exclusions",
                    exclusion_id=exclusion_ids(),
                    pupil_id=ids(key),
                    excluded_on=on,
                    kind=kind,
                    days=days,
                    reason=reason,
                )
            for key, on, summary in script.safeguarding:
                export.add(
                    "safeguarding",
                    concern_id=concern_ids(),
                    pupil_id=ids(key),
                    raised_on=on,
                    summary=summary,
                )
            for key, provision, needs in script.sen:
                export.add("sen", pupil_id=ids(key), provision=provision, needs=needs)
            continue
        for person in pupils:
            year = person.year_group or 0
            if year >= 7 and rng.random() < 0.08:
                export.add(
                    "exclusions",
                    exclusion_id=exclusion_ids(),
                    pupil_id=ids(person.key),
                    excluded_on=_when(rng, date(2023, 9, 1)),
                    kind="SUSPENSION",
                    days=rng.randint(1, 5),
                    reason=rng.choice(SUSPENSIONS),
                )
            if rng.random() < 0.04:
                export.add(
                    "safeguarding",
                    concern_id=concern_ids(),
                    pupil_id=ids(person.key),
                    raised_on=_when(rng, date(2024, 9, 1)),
                    summary=rng.choice(SAFEGUARDING),
                )
            if rng.random() < 0.12:
                export.add(
                    "sen",
                    pupil_id=ids(person.key),
                    provision="EHC_PLAN" if rng.random() < 0.25 else "SEN_SUPPORT",
                    needs=rng.choice(NEEDS),
                )
    export.write(out / "education" / "data")
    return export


def write_housing(world: World, rng: random.Random, out: Path) -> Export:
    export, ids, homes = Export("housing"), Ids(rng, "RES", 6), Ids(rng, "HSG", 5)
    tenancy_ids, approach_ids, report_ids = (
        Ids(rng, "TEN", 6),
        Ids(rng, "HOP", 6),
        Ids(rng, "ASB", 6),
    )
    for household in world.households:
        script = household.script
        approaches: list[tuple[date, str, str]]
        if script is not None:
            approaches = script.homelessness
        elif rng.random() < 0.12:
            reason, outcome = rng.choice(HOMELESSNESS)
            approaches = [(_when(rng, date(2021, 1, 1)), reason, outcome)]
        else:
            approaches = []
        tenure = household.tenure or ("PRIVATE_RENTED" if approaches else None)
        if tenure is None:
            continue
        home = homes(household.key)
        for person in household.people:
            strengths, engagement, notes = _assessment(
                rng,
                "housing",
                household,
                person,
                0.6 if person.relationship == "lead tenant" else 0,
            )
            postcode = household.postcode
            if rng.random() < 0.3:
                postcode = postcode.lower()
            export.add(
                "residents",
                resident_id=ids(person.key),
                given_name=person.given,
                # The housing system has no hyphen in its name field.
                family_name=person.family.replace("-", " "),
                date_of_birth=person.dob,
                postcode=postcode,
                household_id=home,
                relationship=person.relationship,
                strengths=strengths,
                engagement=engagement,
                engagement_notes=notes,
            )
        if script is not None and script.tenancy is not None:
            tenure, started, bedrooms, overcrowded, arrears = script.tenancy
        else:
            started = None if tenure == "PRIVATE_RENTED" else _when(rng, date(2008, 1, 1), 2008)
            bedrooms = rng.randint(1, 4)
            overcrowded = len(household.people) > 2 * bedrooms
            arrears = round(rng.uniform(50, 2000), 2) if rng.random() < 0.3 else None
        export.add(
            "tenancies",
            tenancy_id=tenancy_ids(),
            household_id=home,
            tenure=tenure,
            started_on=started,
            address=f"{household.address}, {household.postcode}",
            bedrooms=bedrooms,
            overcrowded=overcrowded,
            arrears_pounds=arrears,
        )
        for presented, reason, outcome in approaches:
            export.add(
                "homelessness",
                approach_id=approach_ids(),
                household_id=home,
                presented_on=presented,
                reason=reason,
                outcome=outcome,
            )
        reports = (
            script.asb
            if script is not None
            else [(_when(rng, date(2022, 1, 1)), rng.choice(ASB))]
            if rng.random() < 0.1
            else []
        )
        for reported, summary in reports:
            export.add(
                "asb",
                report_id=report_ids(),
                household_id=home,
                reported_on=reported,
                summary=summary,
            )
    export.write(out / "housing" / "data")
    return export


def _social_care_history(
    rng: random.Random, household: Household
) -> tuple[
    list[tuple[str, date, str, str, str, bool]],
    list[tuple[str, str, date]],
    list[tuple[str, str, date, date | None]],
    list[tuple[str, str, str, str, date]],
]:
    """A random household's social care record: contacts about the children, and for some
    an open case with an allocated worker (and a plan, for child protection)."""
    children = [p for p in household.people if not p.adult]
    contacts: list[tuple[str, date, str, str, str, bool]] = []
    cases: list[tuple[str, str, date]] = []
    plans: list[tuple[str, str, date, date | None]] = []
    allocations: list[tuple[str, str, str, str, date]] = []
    category = rng.choice(SC_CATEGORIES)  # families tend to come back for the same worry
    for child in children:
        for _ in range(rng.choice([0, 1, 1, 2, 3])):
            outcome, referral = rng.choice(SC_OUTCOMES)
            concern = category if rng.random() < 0.6 else rng.choice(SC_CATEGORIES)
            received = _when(rng, child.dob + timedelta(days=30))
            contacts.append(
                (child.key, received, rng.choice(SC_SOURCES), concern, outcome, referral)
            )
    if children and rng.random() < 0.4:
        kind, _, teams = rng.choices(SC_CASES, weights=[c[1] for c in SC_CASES])[0]
        opened = _when(rng, max(c.dob for c in children), 2024)
        worker, team = rng.choice(SC_WORKERS), rng.choice(teams)
        role = "LEAD_PROFESSIONAL" if kind == "EARLY_HELP" else "SOCIAL_WORKER"
        for child in children:
            cases.append((child.key, kind, opened))
            allocations.append((child.key, worker, team, role, opened))
            if kind == "CHILD_PROTECTION":
                plans.append((child.key, rng.choice(SC_PLAN_CATEGORIES), opened, None))
    elif children and rng.random() < 0.15:
        started = _when(rng, max(c.dob for c in children), 2020)
        ended = min(started + timedelta(days=rng.randint(120, 540)), EXPORT_DATE)
        for child in children:
            plans.append((child.key, rng.choice(SC_PLAN_CATEGORIES), started, ended))
    return contacts, cases, plans, allocations


def write_social_care(world: World, rng: random.Random, out: Path) -> Export:
    export, ids, families = Export("social-care"), Ids(rng, "SCP", 6), Ids(rng, "FAM", 6)
    child_ids, contact_ids = Ids(rng, f"LA{LA_CODE}-", 6), Ids(rng, "CON", 7)
    case_ids, plan_ids = Ids(rng, "CASE", 6), Ids(rng, "CPP", 5)
    for household in world.households:
        script = household.script
        if script is not None:
            if not script.social_care:
                continue
            history = (script.sc_contacts, script.sc_cases, script.sc_plans, script.sc_allocations)
        else:
            if rng.random() >= (0.6 if household.police else 0.25):
                continue
            history = _social_care_history(rng, household)
        contacts, cases, plans, allocations = history
        if not (contacts or cases or plans or allocations):
            continue
        for person in household.people:
            strengths, engagement, notes = _assessment(
                rng, "social-care", household, person, 0.4 if person.adult else 0
            )
            export.add(
                "people",
                person_id=ids(person.key),
                # The local authority's child id is given to children only.
                la_child_id=None if person.adult else child_ids(person.key),
                nhs_number=person.nhs,
                given_name=person.given if script else _typo(rng, person.given),
                family_name=person.family,
                date_of_birth=person.dob,
                postcode=household.postcode,
                household_id=families(household.key),
                strengths=strengths,
                engagement=engagement,
                engagement_notes=notes,
            )
        for key, received, source, category, outcome, referral in contacts:
            export.add(
                "contacts",
                contact_id=contact_ids(),
                person_id=ids(key),
                received_on=received,
                source=source,
                category=category,
                outcome=outcome,
                referral=referral,
            )
        for key, kind, opened in cases:
            export.add(
                "cases", case_id=case_ids(), person_id=ids(key), case_type=kind, opened_on=opened
            )
        for key, category, started, ended in plans:
            export.add(
                "plans",
                plan_id=plan_ids(),
                person_id=ids(key),
                category=category,
                started_on=started,
                ended_on=ended,
            )
        for key, worker, team, role, allocated in allocations:
            export.add(
                "allocations",
                person_id=ids(key),
                worker_name=worker,
                team=team,
                role=role,
                allocated_on=allocated,
            )
    export.write(out / "social_care" / "data")
    return export


WRITERS: tuple[Callable[[World, random.Random, Path], Export], ...] = (
    write_police,
    write_health,
    write_education,
    write_housing,
    write_social_care,
)


def build_world(seed: int) -> World:
    world = World(random.Random(seed))
    world.households.extend(scripted_households(world))
    world.households.extend(world.random_household(i) for i in range(RANDOM_HOUSEHOLDS))
    return world


def summary(exports: Iterable[Export]) -> list[str]:
    lines = []
    for export in exports:
        people_file = next(iter(export.files))
        rows = export.files[people_file]
        households = {row["household_id"] for row in rows}
        lines.append(f"{export.agency}: {len(rows)} people in {len(households)} households")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=REPO / "adapters", help="adapters folder")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    world = build_world(args.seed)
    people = sum(len(h.people) for h in world.households)
    print(f"world: {people} people in {len(world.households)} households")
    # Each agency draws from its own generator so that changing one export leaves the others.
    exports = [
        write(world, random.Random(f"{args.seed}-{write.__name__}"), args.out) for write in WRITERS
    ]
    for line in summary(exports):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
