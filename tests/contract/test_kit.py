"""The contract kit itself: it fails an adapter that breaks the contract, not only passes
the ones that keep it."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.education import EducationAgency
from adapters.kit import matching
from adapters.kit.agency import Lookup
from adapters.kit.harness import ContractHarness
from adapters.police import PoliceAgency
from faults.rabbit_node import RabbitNode
from schemas.models import AdultPosingRisk, InformationRequest, PoliceFindings
from tests.contract import test_education, test_police

pytestmark = pytest.mark.broker

POLICE = test_police.TestPoliceContract
EDUCATION = test_education.TestEducationContract


class NamesSomeoneElse(PoliceAgency):
    """A police lookup that adds a person from another household to every answer."""

    def lookup(self, request: InformationRequest) -> Lookup:
        lookup = super().lookup(request)
        if not isinstance(lookup.findings, PoliceFindings):
            return lookup
        stranger = AdultPosingRisk(
            name="Rebecca DAVIS", relationship="neighbour", risk_summary="Unrelated record"
        )
        findings = lookup.findings.model_copy(
            update={"adults_posing_risk": [*lookup.findings.adults_posing_risk, stranger]}
        )
        return Lookup(lookup.matches, findings, lookup.strengths, lookup.engagement)


class CopiesRestrictedIntoNotes(PoliceAgency):
    """A police lookup that seals its restricted items but also quotes them in clear."""

    def lookup(self, request: InformationRequest) -> Lookup:
        lookup = super().lookup(request)
        notes = "; ".join(item.summary for item in lookup.restricted) or None
        return Lookup(
            lookup.matches,
            lookup.findings,
            lookup.strengths,
            lookup.engagement,
            notes,
            lookup.restricted,
        )


def test_the_contract_fails_an_adapter_that_names_another_person(tmp_path: Path) -> None:
    with (
        ContractHarness("police", tmp_path, records=NamesSomeoneElse()) as harness,
        pytest.raises(AssertionError, match="another person's name"),
    ):
        POLICE().test_never_returns_another_subjects_data(harness)


def test_the_contract_fails_an_adapter_that_sends_restricted_text_in_clear(
    tmp_path: Path,
) -> None:
    with (
        ContractHarness("police", tmp_path, records=CopiesRestrictedIntoNotes()) as harness,
        pytest.raises(AssertionError, match="restricted text in clear"),
    ):
        POLICE().test_encrypts_restricted_findings(harness)


def test_the_contract_fails_an_adapter_that_trusts_an_identifier_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The matching rule as it was: the record holding the UPN is the child, whoever it is.
    monkeypatch.setattr(matching, "corroborates", lambda subject, record: True)
    with (
        ContractHarness("education", tmp_path, records=EducationAgency()) as harness,
        pytest.raises(AssertionError, match="known on another child's name"),
    ):
        EDUCATION().test_an_identifier_with_another_childs_details_is_not_known_and_flagged(harness)


def test_the_connection_cut_reaches_the_adapter_on_a_broker_that_is_not_the_default_node(
    management_node: RabbitNode, tmp_path: Path
) -> None:
    # A private node on its own ports: rabbitmqctl without -n would look at the machine's.
    with ContractHarness("police", tmp_path, amqp_url=management_node.amqp_url) as harness:
        POLICE().test_keeps_answering_after_its_connection_is_closed(harness)


class SaysTooMuch(PoliceAgency):
    """A police lookup whose records hold more strengths than an answer may carry."""

    def lookup(self, request: InformationRequest) -> Lookup:
        lookup = super().lookup(request)
        return Lookup(lookup.matches, lookup.findings, ["x" * 600] * 30, lookup.engagement)


def test_an_answer_over_the_contracts_bounds_is_dead_lettered_at_once_with_its_reason(
    tmp_path: Path,
) -> None:
    with ContractHarness("police", tmp_path, records=SaysTooMuch()) as harness:
        request = harness.request(POLICE.known_subject)
        harness.send(request, message_id="too-much")
        [dead] = harness.dead_letters(["too-much"], timeout=15.0)
        assert dead.reason == "answer-out-of-bounds"
        assert "strengths" in dead.headers.get("x-mash-detail", "")
        assert "x" * 50 not in dead.headers.get("x-mash-detail", "")  # never the values
        assert "delivery_limit" not in str(dead.headers.get("x-death", ""))
