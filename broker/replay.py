"""Dead letters replayed under the operator's own broker identity.

``mash dlq replay`` republishes a dead letter, unchanged and with its original sender's
signature, to the exchange its work queue is bound to. RabbitMQ stamps it with the broker
user that republished it (the ``operator`` role's, ``<prefix>-operator``), never the
original sender's, so a receiver that checks the broker user (the hub, for an agency's
answer) would refuse every replay. A receiver instead accepts a message as a replay when

- its ``user_id`` is the operator role's broker user (which RabbitMQ has checked against
  the login), and
- it carries the replay headers that ``mash dlq replay`` sets,

and then relies on the original sender's signature alone, which it verifies as usual: the
operator can put a genuine message back on its path, never write one in an agency's name.
The operator's identity is good for nothing else: a message it publishes without the replay
headers is refused like any other from the wrong user. Each accepted replay is audited.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from broker.identities import user_name
from broker.settings import BrokerSettings
from broker.topology import OPERATOR_ROLE

__all__ = ["REPLAYED_AT", "REPLAYED_FROM", "operator_user", "replayed_by_operator"]

REPLAYED_AT = "x-mash-replayed-at"
REPLAYED_FROM = "x-mash-replayed-from"  # the dead-letter queue it was taken from


def operator_user(settings: BrokerSettings) -> str:
    """The broker user of the operator role (``mash broker provision`` creates it)."""
    return user_name(settings, OPERATOR_ROLE)


def replayed_by_operator(
    settings: BrokerSettings, user_id: str | None, headers: Mapping[str, Any] | None
) -> str | None:
    """The operator's broker user when this message is a dead letter it replayed, else None."""
    if user_id is None or user_id != operator_user(settings):
        return None
    if not headers or not headers.get(REPLAYED_FROM):
        return None
    return user_id
