"""Which messages the hub takes as an operator's replay of a dead letter: only those the
operator role's broker user published with the replay headers. End to end, with provisioned
users: tests/integration/test_identities.py."""

from __future__ import annotations

from broker.replay import REPLAYED_FROM, operator_user, replayed_by_operator
from broker.settings import BrokerSettings

SETTINGS = BrokerSettings(prefix="boro")
REPLAY = {REPLAYED_FROM: "boro.hub.answers.routine.dead"}


def test_the_operator_role_has_a_user_named_like_every_other() -> None:
    assert operator_user(SETTINGS) == "boro-operator"
    templated = BrokerSettings(prefix="boro", broker_user_template="{role}@{prefix}")
    assert operator_user(templated) == "operator@boro"


def test_a_replay_is_the_operators_user_with_the_replay_headers() -> None:
    assert replayed_by_operator(SETTINGS, "boro-operator", REPLAY) == "boro-operator"


def test_the_operators_user_without_the_headers_is_no_replay() -> None:
    assert replayed_by_operator(SETTINGS, "boro-operator", {}) is None
    assert replayed_by_operator(SETTINGS, "boro-operator", None) is None
    assert replayed_by_operator(SETTINGS, "boro-operator", {REPLAYED_FROM: ""}) is None


def test_the_headers_from_any_other_user_are_no_replay() -> None:
    for user in ("boro-police", "boro-hub", "guest", None):
        assert replayed_by_operator(SETTINGS, user, REPLAY) is None
