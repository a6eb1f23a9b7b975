"""The contract every agency adapter keeps, as tests an adapter's own test suite subclasses.

::

    from adapters.kit.contract import AdapterContract
    from schemas.enums import SubjectRole
    from schemas.models import Subject

    class TestPoliceContract(AdapterContract):
        agency = "police"                       # its name in ``mash.adapters``
        known_subject = Subject(...)            # someone its records hold
        other_known_subject = Subject(...)      # someone else, in another household
        restricted_subject = Subject(...)       # someone with restricted findings, or None

Each test runs against the real broker (``MASH_AMQP_URL``, by default the local one): the
installed adapter, found by its name as ``mash adapter NAME`` finds it, answers requests
the test publishes as the hub (see :mod:`adapters.kit.harness`). The adapter is started
once per class, under a name prefix of its own that is removed afterwards.

What is proved, one test each:

- each request is answered exactly once: a redelivered request (same message id) gets the
  same response id, so the hub sees one answer;
- a subject the agency does not know is answered ``NOT_KNOWN``, with no findings;
- the known subject is answered ``KNOWN`` with findings in a schema the registry knows
  (so the hub and screening team can read them);
- an answer never carries another subject's data: its matches and every ``subject_id`` in
  its findings are the requested subject's, and another person's record ids, identifiers and
  name appear nowhere in it;
- identity before disclosure: the known subject's identifiers with another child's name and
  date of birth, with a twin's name and the same date of birth, or with the date of birth
  transposed (day and month swapped) are answered ``NOT_KNOWN`` with nothing about the
  record; when the agency matched the known subject by that identifier, the answer flags
  ``identifier_conflict`` so the MASH checks by hand;
- restricted findings travel sealed: ciphertext that opens with the restricted file's private
  key to what the agency holds, their clear text nowhere in the message (skipped, with the
  reason, when the agency declares it holds no restricted findings);
- every answer is signed with the adapter's registered key, and a changed body fails;
- a bad request (a body that is not Avro, a signature that does not verify) is dead-lettered
  with a reason, and the next good request is still answered;
- after the adapter's connection is cut (as a network failure would cut it, on whatever
  broker the test uses), the next request is answered once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any, ClassVar

import pytest

from adapters.kit.agency import Agency
from adapters.kit.harness import Answer, ContractHarness
from broker.keyring import RESTRICTED_OWNER
from broker.sealed import open_sealed
from broker.signing import KEY_ID, SignatureRefused
from schemas.codec import decode, decode_record, encode, schema_name_of
from schemas.enums import Brag, MatchMethod, ResponseOutcome, SubjectRole
from schemas.models import RestrictedFindings, Subject

__all__ = ["AdapterContract"]

_ID_SEPARATORS = re.compile(r"[^0-9A-Za-z]")


def _as(subject: Subject, subject_id: str) -> Subject:
    return subject.model_copy(update={"subject_id": subject_id})


def _transposed(born: date) -> date:
    """The date of birth as it is commonly mistyped: day and month swapped (04/11 for 11/04),
    else the year's last two digits swapped, else a day out when neither gives another date."""
    candidates = [(born.year, born.day, born.month)]
    decade, year = divmod(born.year % 100, 10)
    candidates.append((born.year - born.year % 100 + year * 10 + decade, born.month, born.day))
    for y, m, d in candidates:
        try:
            other = date(y, m, d)
        except ValueError:
            continue
        if other != born and other <= date.today():
            return other
    return born - timedelta(days=1)


# Fictional children for the identity tests: another child entirely, and a twin's given name
# that no reasonable rule takes for the known subject's.
_STRANGER = ("Zak", "Khan")
_TWIN_NAMES = ("Noah", "Eva")


def _identity_cases(known: Subject) -> list[tuple[str, Subject]]:
    born = known.date_of_birth or date(2014, 1, 1)
    given = (known.given_name or "").casefold()
    twin = next(n for n in _TWIN_NAMES if not given.startswith(n.casefold()[:2]))
    return [
        (
            "another child's name and date of birth",
            known.model_copy(
                update={
                    "given_name": _STRANGER[0],
                    "family_name": _STRANGER[1],
                    "date_of_birth": born - timedelta(days=400),
                }
            ),
        ),
        ("a twin's name and the same date of birth", known.model_copy(update={"given_name": twin})),
        (
            "a transposed date of birth",
            known.model_copy(update={"date_of_birth": _transposed(born)}),
        ),
    ]


def _subject_ids(node: Any) -> Iterator[str]:
    """Every value of a ``subject_id`` or ``subject_ids`` field, however deeply nested."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "subject_id" and isinstance(value, str):
                yield value
            elif key == "subject_ids" and isinstance(value, list):
                yield from (v for v in value if isinstance(v, str))
            else:
                yield from _subject_ids(value)
    elif isinstance(node, list):
        for item in node:
            yield from _subject_ids(item)


def _text(value: Any) -> str:
    """Folded, one-spaced text of a decoded record, to search for a person's name in."""
    return " ".join(json.dumps(value, default=str, ensure_ascii=False).casefold().split())


def _header_text(answer: Answer) -> str:
    return " ".join(
        (v.decode(errors="replace") if isinstance(v, bytes) else str(v))
        for v in answer.headers.values()
    )


class AdapterContract:
    """Subclass with ``agency``, ``known_subject``, ``other_known_subject`` and, if the agency
    shares restricted findings, ``restricted_subject``; name the subclass ``Test...``."""

    agency: ClassVar[str]
    known_subject: ClassVar[Subject]
    # Someone else the agency knows, in another household: the test asks for each of them in
    # turn and checks that neither answer mentions the other.
    other_known_subject: ClassVar[Subject]
    # None declares that this agency never holds restricted findings.
    restricted_subject: ClassVar[Subject | None] = None
    # Fictional, and on nobody's records: a postcode in the unused ZZ99 area.
    unknown_subject: ClassVar[Subject] = Subject(
        subject_id="S1",
        role=SubjectRole.CHILD,
        given_name="Nobody",
        family_name="Onanyrecord",
        date_of_birth=date(2016, 2, 29),
        postcode="ZZ99 9ZZ",
    )
    requests_in_burst: ClassVar[int] = 5

    @pytest.fixture(scope="class")
    @classmethod
    def agency_records(cls) -> Iterator[Agency | None]:
        """The records the adapter answers from; ``None``, the installed adapter on its
        built-in data. A subclass overrides this to keep the same contract on another source
        (``tests/contract/test_police_postgres.py``: the police adapter on PostgreSQL)."""
        yield None

    @pytest.fixture(scope="class")
    @classmethod
    def harness(
        cls, tmp_path_factory: pytest.TempPathFactory, agency_records: Agency | None
    ) -> Iterator[ContractHarness]:
        for attribute in ("agency", "known_subject", "other_known_subject"):
            if not hasattr(cls, attribute):
                pytest.fail(f"{cls.__name__} must set {attribute} (see AdapterContract)")
        workdir = tmp_path_factory.mktemp(f"contract-{cls.agency}")
        with ContractHarness(cls.agency, workdir, records=agency_records) as h:
            yield h

    # --- helpers ------------------------------------------------------------------------------

    def _known_answer(self, harness: ContractHarness, subject: Subject, what: str) -> Answer:
        answer = harness.answer(harness.request(subject))
        assert answer.response.outcome is ResponseOutcome.KNOWN, (
            f"{what} ({subject.subject_id}) is not known to {self.agency}: "
            "the contract test needs someone its records hold"
        )
        return answer

    @staticmethod
    def _findings(answer: Answer) -> dict[str, Any]:
        data = answer.response.findings
        return {} if data is None else decode_record(data, schema_name_of(data))

    # --- the contract ---------------------------------------------------------------------

    def test_answers_each_request_exactly_once(self, harness: ContractHarness) -> None:
        requests = [
            harness.request(_as(self.known_subject, "S1"), brag=Brag.RED if i % 2 else Brag.GREEN)
            for i in range(self.requests_in_burst - 1)
        ]
        requests.append(harness.request(self.unknown_subject))
        for request in requests:
            harness.send(request)
        # The broker redelivers a message whose ack was lost: the same message id again.
        redelivered = requests[0]
        harness.send(redelivered, message_id=redelivered.request_id)

        answers = harness.answers([r.request_id for r in requests])

        for request in requests:
            got = answers[request.request_id]
            response_ids = {a.response.response_id for a in got}
            assert len(response_ids) == 1, f"{len(response_ids)} different answers to one request"
            assert {a.message_id for a in got} == response_ids
            assert all(a.response.contact_ref == request.contact_ref for a in got)
            # A repeated answer must say the same, or "one answer" would depend on which won.
            assert len({(a.response.outcome, a.response.findings) for a in got}) == 1
            if request is not redelivered:
                assert len(got) == 1, f"{len(got)} answers to a request sent once"
        assert len({a[0].response.response_id for a in answers.values()}) == len(requests)
        assert harness.undecodable_answers() == []

    def test_answers_not_known_for_an_unknown_subject(self, harness: ContractHarness) -> None:
        request = harness.request(self.unknown_subject)

        response = harness.answer(request).response

        assert response.outcome is ResponseOutcome.NOT_KNOWN
        assert [m.subject_id for m in response.matches] == [self.unknown_subject.subject_id]
        assert not any(m.matched for m in response.matches)
        assert all(m.record_id is None for m in response.matches)
        assert response.findings is None
        assert response.restricted is None

    def test_answers_the_known_subject_with_registered_findings(
        self, harness: ContractHarness
    ) -> None:
        answer = self._known_answer(harness, _as(self.known_subject, "S1"), "known_subject")
        response = answer.response

        assert response.agency == self.agency
        assert [m.subject_id for m in response.matches] == ["S1"]
        assert response.matches[0].matched and response.matches[0].record_id
        assert response.findings is not None, "a known subject is answered with findings"
        # Raises if the findings schema is not in the registry (a missing mash.schemas entry).
        assert schema_name_of(response.findings).startswith("uk.mash.")
        if self.restricted_subject is None:
            assert response.restricted is None, (
                f"{self.agency} declares no restricted findings but sent some"
            )

    def test_never_returns_another_subjects_data(self, harness: ContractHarness) -> None:
        mine = self._known_answer(harness, _as(self.known_subject, "A1"), "known_subject")
        theirs = self._known_answer(
            harness, _as(self.other_known_subject, "B1"), "other_known_subject"
        )

        for answer, own_id, other, other_answer in (
            (mine, "A1", self.other_known_subject, theirs),
            (theirs, "B1", self.known_subject, mine),
        ):
            response = answer.response
            assert [m.subject_id for m in response.matches] == [own_id]
            findings = self._findings(answer)
            assert set(_subject_ids(findings)) <= {own_id}, "findings about another subject"
            identifiers = {m.record_id for m in other_answer.response.matches if m.record_id}
            identifiers |= {
                _ID_SEPARATORS.sub("", value)
                for value in (other.nhs_number, other.upn, other.la_child_id)
                if value
            }
            for identifier in identifiers:
                assert identifier.encode() not in answer.body, "another person's identifier"
                assert identifier.casefold() not in _text(findings)
            other_name = " ".join(f"{other.given_name or ''} {other.family_name or ''}".split())
            if other_name:
                assert other_name.casefold() not in _text(findings), "another person's name"

    def test_an_identifier_with_another_childs_details_is_not_known_and_flagged(
        self, harness: ContractHarness
    ) -> None:
        baseline = self._known_answer(harness, _as(self.known_subject, "S1"), "known_subject")
        by = baseline.response.matches[0].method
        by_identifier = by in (MatchMethod.NHS_NUMBER, MatchMethod.UPN, MatchMethod.LA_CHILD_ID)
        record_id = baseline.response.matches[0].record_id or ""

        for case, asked in _identity_cases(_as(self.known_subject, "S1")):
            answer = harness.answer(harness.request(asked))
            response = answer.response

            assert response.outcome is ResponseOutcome.NOT_KNOWN, f"known on {case}"
            [match] = response.matches
            assert not match.matched and match.record_id is None, f"matched on {case}"
            assert response.findings is None and response.restricted is None, case
            assert response.strengths == [], f"strengths disclosed on {case}"
            assert record_id.encode() not in answer.body, f"the record's id sent on {case}"
            if by_identifier:
                assert match.identifier_conflict is by, (
                    f"{case}: the {by.value} disagrees with the record, and the answer does "
                    "not flag the identifier conflict for the MASH to check"
                )

    def test_encrypts_restricted_findings(self, harness: ContractHarness) -> None:
        if self.restricted_subject is None:
            pytest.skip(
                f"{self.agency} declares it holds no restricted findings (restricted_subject "
                "is None)"
            )
        request = harness.request(_as(self.restricted_subject, "S1"))
        expected = harness.agency.lookup(request).restricted
        assert expected, "restricted_subject has no restricted findings in the agency's records"

        answer = harness.answer(request)

        envelope = answer.response.restricted
        assert envelope is not None, "restricted findings were not sent"
        assert envelope.key_id == harness.keyring.current(RESTRICTED_OWNER, "restricted").key_id
        plaintext = open_sealed(
            envelope,
            harness.restricted_private_key(),
            contact_ref=request.contact_ref,
            agency=self.agency,
            response_id=answer.response.response_id,
        )
        assert decode(plaintext, RestrictedFindings).items == expected
        assert plaintext not in answer.body
        headers = _header_text(answer)
        for item in expected:
            for clear in (item.summary, item.category):
                assert clear.encode() not in answer.body, "restricted text in clear"
                assert clear not in headers, "restricted text in a header"
            assert set(item.subject_ids) <= {"S1"}

    def test_signs_every_answer_with_its_registered_key(self, harness: ContractHarness) -> None:
        answer = harness.answer(harness.request(_as(self.known_subject, "S1")))

        sender = harness.verifier.verify(
            answer.headers, answer.message_id, answer.type, answer.body, frozenset({self.agency})
        )

        assert sender == self.agency
        assert answer.headers[KEY_ID] == harness.keyring.current(self.agency, "signing").key_id
        tampered = bytearray(answer.body)
        tampered[-1] ^= 0x01
        with pytest.raises(SignatureRefused):
            harness.verifier.verify(answer.headers, answer.message_id, answer.type, bytes(tampered))

    def test_dead_letters_a_bad_request_and_keeps_answering(self, harness: ContractHarness) -> None:
        forged = harness.request(_as(self.known_subject, "S1"))
        garbage_id = harness.send_body(b"this is not an Avro message")
        forged_id = harness.send_body(
            encode(forged), message_id=forged.request_id, spoil_signature=True
        )
        good = harness.request(self.unknown_subject)
        harness.send(good)

        answers = harness.answers([good.request_id])
        dead = {d.message_id: d for d in harness.dead_letters([garbage_id, forged_id])}

        assert len(answers[good.request_id]) == 1
        assert dead[garbage_id].reason, "dead letter without a reason"
        assert dead[forged_id].reason == "bad-signature"
        request_queues = {harness.topology.request_queue(self.agency, "routine") + ".dead"}
        assert {d.queue for d in dead.values()} == request_queues
        assert forged.request_id not in harness.answered_request_ids()

    def test_keeps_answering_after_its_connection_is_closed(self, harness: ContractHarness) -> None:
        closed = harness.close_adapter_connection()
        assert closed == 1, f"expected to close the adapter's connection, closed {closed}"

        request = harness.request(_as(self.known_subject, "S1"), brag=Brag.RED)
        harness.send(request)
        answers = harness.answers([request.request_id], timeout=30.0)

        assert len(answers[request.request_id]) == 1
        assert answers[request.request_id][0].response.outcome is ResponseOutcome.KNOWN
