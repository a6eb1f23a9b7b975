"""The chronology's rule for "the same child", and a hub database from before the chronology
finding the children of the contacts it already holds."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from hub.chronology import MAX_HUB_ENTRIES, chronology, same_child, subject_keys
from hub.store import SCHEMA_VERSION, HubStore, SubjectKeys
from schemas.codec import encode
from schemas.enums import Brag, SubjectRole
from schemas.models import Contact, Subject
from tests.support import make_contact

BORN = date(2016, 5, 4)


def child(**fields: object) -> SubjectKeys:
    values: dict[str, object] = {
        "subject_id": "S1",
        "nhs_number": None,
        "upn": None,
        "la_child_id": None,
        "given_name": "olivia",
        "family_name": "bennett",
        "date_of_birth": BORN,
    }
    values.update(fields)
    return SubjectKeys(**values)  # type: ignore[arg-type]


def test_the_same_identifier_with_the_same_birthday_and_name_is_the_same_child() -> None:
    assert same_child(
        child(nhs_number="9994012340", given_name="olivia rose"),
        child(nhs_number="9994012340"),
    )


def test_the_same_identifier_with_another_name_or_birthday_is_not_a_link() -> None:
    # The reported case: a contact carrying another pupil's UPN was linked to hers.
    theirs = child(upn="W302205713002", given_name="isabella", family_name="green")
    for mine in (
        child(upn="W302205713002", given_name="zak", family_name="khan"),
        child(upn="W302205713002", given_name="isabella", family_name="green", date_of_birth=None),
        child(
            upn="W302205713002",
            given_name="isabella",
            family_name="green",
            date_of_birth=date(2016, 4, 5),
        ),  # day and month swapped
        child(upn="W302205713002", given_name="isobel", family_name="green"),  # a twin
    ):
        assert not same_child(mine, theirs), mine


def test_a_twin_with_a_name_like_the_others_is_a_different_child() -> None:
    assert not same_child(
        child(given_name="eva", family_name="richardson"),
        child(given_name="ava", family_name="richardson"),
    )


def test_two_identifiers_of_one_kind_are_two_children_even_with_the_same_name() -> None:
    assert not same_child(child(upn="A302"), child(upn="B302"))


def test_a_misspelt_name_and_the_same_date_of_birth_is_the_same_child() -> None:
    assert same_child(child(family_name="bennet"), child())


def test_a_different_date_of_birth_or_name_is_a_different_child() -> None:
    assert not same_child(child(date_of_birth=BORN + timedelta(days=1)), child())
    assert not same_child(child(given_name="noah"), child())


def test_only_the_children_of_a_contact_are_indexed() -> None:
    contact = make_contact()
    parent = Subject(subject_id="P1", role=SubjectRole.PARENT, given_name="A", family_name="B")
    keys = subject_keys(contact.model_copy(update={"subjects": [*contact.subjects, parent]}))
    assert [k.subject_id for k in keys] == ["S1"]
    assert (keys[0].given_name, keys[0].family_name) == ("test", "child")


def test_a_schema_2_database_indexes_the_children_of_its_earlier_contacts(
    tmp_path: Path,
) -> None:
    path = tmp_path / "hub.sqlite3"
    store = HubStore(path)
    contact = make_contact()
    received = datetime(2026, 11, 2, 10, tzinfo=UTC)
    with store.transaction() as db:
        store.add_contact(
            db,
            ref="MASH-2026-000001",
            year=2026,
            seq=1,
            contact_id=contact.contact_id,
            received_at=received,
            brag=Brag.GREEN,
            deadline=received + timedelta(days=3),
            body=encode(contact),
            referrer_kind=contact.referrer.kind.value,
        )
    store.close()
    # Take the database back to schema 2: no subjects table, no routing column.
    db = sqlite3.connect(path)
    db.execute("DROP TABLE contact_subjects")
    db.execute("ALTER TABLE contacts DROP COLUMN routed_to")
    db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    db.commit()
    db.close()

    store = HubStore(path)

    version = store.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    assert int(version[0]) == SCHEMA_VERSION == 4
    later = make_contact()
    with store.transaction() as db:
        store.add_contact(
            db,
            ref="MASH-2026-000002",
            year=2026,
            seq=2,
            contact_id=later.contact_id,
            received_at=received + timedelta(days=7),
            brag=Brag.AMBER,
            deadline=received + timedelta(days=10),
            body=encode(later),
            referrer_kind=later.referrer.kind.value,
        )
    [keys] = subject_keys(later)
    assert [e.ref for e in store.earlier_subjects("MASH-2026-000002", keys)] == ["MASH-2026-000001"]
    stored = store.contact("MASH-2026-000001")
    assert stored is not None and stored.routed_to is None
    store.close()


def test_a_schema_3_database_learns_who_referred_each_contact_and_its_chronology_says(
    tmp_path: Path,
) -> None:
    path = tmp_path / "hub.sqlite3"
    store = HubStore(path)
    earlier, later = make_contact(), make_contact()
    received = datetime(2026, 11, 2, 10, tzinfo=UTC)
    _store_contact(store, 1, earlier, received)
    store.close()
    # Back to schema 3: the referrer's kind was only inside the stored contact.
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE contacts DROP COLUMN referrer_kind")
    db.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    db.commit()
    db.close()

    store = HubStore(path)
    _store_contact(store, 2, later, received)
    second = store.contact("MASH-2026-000002")
    assert second is not None
    [entry] = chronology(store, second, later, [])[0]

    assert (entry.contact_ref, entry.source) == ("MASH-2026-000001", "school")
    assert earlier.referrer.kind.value == "SCHOOL"
    store.close()


def test_a_long_history_lists_the_most_recent_contacts_and_counts_the_rest(
    tmp_path: Path,
) -> None:
    store = HubStore(tmp_path / "hub.sqlite3")
    received = datetime(2026, 1, 5, 10, tzinfo=UTC)
    total = MAX_HUB_ENTRIES + 7
    for seq in range(1, total + 2):  # the last one is the contact being screened
        _store_contact(store, seq, make_contact(), received)
    row = store.contact(f"MASH-2026-{total + 1:06d}")
    assert row is not None

    entries, omitted = chronology(store, row, make_contact(), [])

    assert omitted == 7
    assert [e.contact_ref for e in entries] == [
        f"MASH-2026-{seq:06d}" for seq in range(8, total + 1)
    ]


def test_a_contact_carrying_another_childs_upn_is_not_linked_to_hers(tmp_path: Path) -> None:
    # The reported case: Zak Khan's contact carried Isabella Green's UPN.
    store = HubStore(tmp_path / "hub.sqlite3")
    received = datetime(2026, 1, 5, 10, tzinfo=UTC)
    isabella = Subject(
        subject_id="S1",
        role=SubjectRole.CHILD,
        given_name="Isabella",
        family_name="Green",
        date_of_birth=date(2009, 2, 3),
        upn="W302205713002",
    )
    zak = Subject(
        subject_id="S1",
        role=SubjectRole.CHILD,
        given_name="Zak",
        family_name="Khan",
        date_of_birth=date(2014, 1, 1),
        upn="W302205713002",
    )
    contacts = [
        make_contact().model_copy(update={"subjects": [child]})
        for child in (isabella, isabella, zak)
    ]
    for seq, contact in enumerate(contacts, start=1):
        _store_contact(store, seq, contact, received)
    second, third = store.contact("MASH-2026-000002"), store.contact("MASH-2026-000003")
    assert second is not None and third is not None

    assert [e.contact_ref for e in chronology(store, second, contacts[1], [])[0]] == [
        "MASH-2026-000001"
    ]
    assert chronology(store, third, contacts[2], []) == ([], 0)


def _store_contact(store: HubStore, seq: int, contact: Contact, received: datetime) -> None:
    """Green contact number ``seq``, received ``seq`` days after ``received``."""
    with store.transaction() as db:
        store.add_contact(
            db,
            ref=f"MASH-2026-{seq:06d}",
            year=2026,
            seq=seq,
            contact_id=contact.contact_id,
            received_at=received + timedelta(days=seq),
            brag=Brag.GREEN,
            deadline=received + timedelta(days=seq + 3),
            body=encode(contact),
            referrer_kind=contact.referrer.kind.value,
        )
        store.add_contact_subjects(db, f"MASH-2026-{seq:06d}", subject_keys(contact))
