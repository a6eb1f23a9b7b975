"""The console without a broker: the board's order and time left, accounts, sessions, CSRF,
roles, need-to-know records, and its store's file mode."""

from __future__ import annotations

import re
import stat
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from starlette.testclient import TestClient

from broker.consumer import Rejected
from console.app import create_app
from console.auth import LOGIN_LIMIT, Accounts, LoginRefused, Role
from console.board import Gauge, build_board, format_left
from console.feed import Changes, Feed
from console.settings import ConsoleSettings
from console.store import BoardContact, ConsoleStore
from hub.policy import BragPolicy
from schemas.enums import Brag, Engagement, PacketReason, ResponseOutcome
from schemas.models import (
    AgencyResponse,
    RestrictedEnvelope,
    RestrictedHolding,
    ScreeningPacket,
)
from tests.support import Keys, make_contact

PASSWORD = "a long enough password"
# Argon2 with the library's defaults takes a good part of a second on a busy machine; the
# tests check the behaviour, not the cost, so they hash cheaply (still Argon2id).
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
# Friday 4 December 2026, 16:00 in London (GMT).
FRIDAY_4PM = datetime(2026, 12, 4, 16, 0, tzinfo=UTC)


def _contact(ref: str, brag: Brag, deadline: datetime, **kw: object) -> BoardContact:
    return BoardContact(
        ref=ref,
        brag=brag,
        received_at=deadline - timedelta(hours=4),
        deadline=deadline,
        agencies=("police", "health", "education", "housing"),
        **kw,  # type: ignore[arg-type]
    )


def test_the_board_puts_overdue_first_then_lagging_agencies_then_red() -> None:
    now = FRIDAY_4PM
    contacts = [
        _contact("GREEN-1", Brag.GREEN, now + timedelta(days=3)),
        _contact("RED-1", Brag.RED, now + timedelta(hours=3)),
        _contact(
            "AMBER-LAGGING", Brag.AMBER, now + timedelta(days=1), reminded=frozenset({"housing"})
        ),
        _contact(
            "AMBER-OVERDUE", Brag.AMBER, now - timedelta(minutes=5), answered=frozenset({"police"})
        ),
        _contact(
            "BLUE-LAGGING", Brag.BLUE, now + timedelta(days=5), reminded=frozenset({"housing"})
        ),
    ]

    board = build_board(contacts, BragPolicy(), now)

    assert [r.contact.ref for r in board.rows] == [
        "AMBER-OVERDUE",
        "AMBER-LAGGING",
        "BLUE-LAGGING",
        "RED-1",
        "GREEN-1",
    ]
    assert board.lagging == ("housing",)
    overdue = board.rows[0]
    assert dict(overdue.gauges) == {
        "police": Gauge.ANSWERED,
        "health": Gauge.OVERDUE,
        "education": Gauge.OVERDUE,
        "housing": Gauge.OVERDUE,
    }
    assert dict(board.rows[1].gauges)["housing"] is Gauge.REMINDED


def test_time_left_counts_opening_hours_for_a_working_day_window_and_clock_hours_for_red() -> None:
    # Friday 16:00 to Monday 10:00: an hour on Friday (closing 17:00), an hour on Monday.
    monday_10am = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    board = build_board(
        [
            _contact("AMBER", Brag.AMBER, monday_10am),
            _contact("RED", Brag.RED, FRIDAY_4PM + timedelta(hours=3)),
        ],
        BragPolicy(),
        FRIDAY_4PM,
    )
    left = {r.contact.ref: (r.time_left, r.working_time) for r in board.rows}
    assert left["AMBER"] == (timedelta(hours=2), True)
    assert left["RED"] == (timedelta(hours=3), False)
    assert format_left(*left["AMBER"]) == "2h 00m working time left"
    assert format_left(timedelta(minutes=-12), False) == "overdue by 0h 12m"


def test_passwords_are_kept_as_argon2_hashes_and_checked(tmp_path: Path) -> None:
    store = ConsoleStore(tmp_path / "console.sqlite3")
    accounts = Accounts(store, FAST)
    accounts.add("officer", Role.SCREENING_OFFICER, PASSWORD, FRIDAY_4PM)

    kept = store.user("officer")
    assert kept is not None and kept.password_hash.startswith("$argon2id$")
    assert PASSWORD not in (tmp_path / "console.sqlite3").read_bytes().decode("latin-1")
    assert accounts.login("officer", PASSWORD, FRIDAY_4PM).role == "screening-officer"
    with pytest.raises(LoginRefused, match="not right"):
        accounts.login("officer", "a wrong password!!", FRIDAY_4PM)
    with pytest.raises(LoginRefused, match="not right"):
        accounts.login("nobody", PASSWORD, FRIDAY_4PM)


def test_login_attempts_are_limited_per_account_for_fifteen_minutes(tmp_path: Path) -> None:
    accounts = Accounts(ConsoleStore(tmp_path / "console.sqlite3"), FAST)
    accounts.add("officer", Role.SCREENING_OFFICER, PASSWORD, FRIDAY_4PM)
    for _ in range(LOGIN_LIMIT):
        with pytest.raises(LoginRefused):
            accounts.login("officer", "guessing guessing", FRIDAY_4PM)

    with pytest.raises(LoginRefused, match="Too many"):
        accounts.login("officer", PASSWORD, FRIDAY_4PM + timedelta(minutes=1))
    assert accounts.login("officer", PASSWORD, FRIDAY_4PM + timedelta(minutes=16))


def test_the_store_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "console.sqlite3"
    ConsoleStore(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _packet(ref: str = "MASH-2026-000007", restricted: bool = False) -> ScreeningPacket:
    contact = make_contact()
    answer = AgencyResponse(
        response_id=str(uuid.uuid4()),
        request_id=str(uuid.uuid4()),
        contact_ref=ref,
        agency="police",
        responded_at=FRIDAY_4PM,
        outcome=ResponseOutcome.KNOWN,
        engagement=Engagement.ENGAGES_WELL,
        restricted=RestrictedEnvelope(
            key_id="k", ephemeral_public_key=b"x", nonce=b"n", ciphertext=b"secret"
        )
        if restricted
        else None,
    )
    return ScreeningPacket(
        packet_id=str(uuid.uuid4()),
        contact_ref=ref,
        version=1,
        reason=PacketReason.COMPLETE,
        published_at=FRIDAY_4PM,
        received_at=FRIDAY_4PM,
        brag=Brag.AMBER,
        deadline=FRIDAY_4PM + timedelta(days=1),
        referrer=contact.referrer,
        concerns_summary=contact.concerns_summary,
        consent=contact.consent,
        lawful_basis=contact.lawful_basis,
        subjects=contact.subjects,
        answers=[answer],
        missing_agencies=["health"],
        restricted_held=[RestrictedHolding(agency="police", reference=f"RF-{ref}-police")],
    )


@pytest.fixture
def settings(tmp_path: Path, keys: Keys) -> ConsoleSettings:
    return ConsoleSettings(
        prefix="unit", keyring=keys.keyring, key_dir=keys.key_dir, console_db=tmp_path / "c.db"
    )


async def test_a_packet_carrying_restricted_information_is_refused_not_stored(
    settings: ConsoleSettings,
) -> None:
    store = ConsoleStore(settings.console_db)
    feed = Feed(settings, store, Changes())

    with pytest.raises(Rejected, match="restricted"):
        await feed._on_packet(_packet(restricted=True))
    assert store.packet("MASH-2026-000007") is None

    await feed._on_packet(_packet())
    assert store.packet("MASH-2026-000007") is not None


def _client(settings: ConsoleSettings) -> tuple[TestClient, ConsoleStore]:
    store = ConsoleStore(settings.console_db)
    accounts = Accounts(store, FAST)
    for name, role in (("officer", Role.SCREENING_OFFICER), ("operator", Role.HUB_OPERATOR)):
        accounts.add(name, role, PASSWORD, FRIDAY_4PM)
    with store.transaction() as db:
        store.add_packet(db, _packet(), FRIDAY_4PM)
    app = create_app(settings, store=store, connect_broker=False, hasher=FAST)
    # The test client speaks https, so the Secure session cookie travels as in a browser.
    return TestClient(app, base_url="https://console.test"), store


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found is not None
    return found.group(1)


def _sign_in(client: TestClient, name: str) -> None:
    token = _csrf(client.get("/login").text)
    reply = client.post(
        "/login",
        data={"username": name, "password": PASSWORD, "csrf": token},
        follow_redirects=False,
    )
    assert reply.status_code == 303, reply.text


def test_pages_need_a_signed_in_user_and_the_cookie_is_secure(settings: ConsoleSettings) -> None:
    client, _ = _client(settings)
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    assert client.get("/contacts/MASH-2026-000007", follow_redirects=False).status_code == 303

    token = _csrf(client.get("/login").text)
    reply = client.post(
        "/login",
        data={"username": "officer", "password": PASSWORD, "csrf": token},
        follow_redirects=False,
    )
    cookie = reply.headers["set-cookie"].lower()
    assert "httponly" in cookie and "secure" in cookie and "samesite=strict" in cookie


def test_a_login_or_an_action_without_the_sessions_csrf_token_is_refused(
    settings: ConsoleSettings,
) -> None:
    client, store = _client(settings)
    client.get("/login")
    forged = client.post(
        "/login", data={"username": "officer", "password": PASSWORD, "csrf": "0" * 64}
    )
    assert forged.status_code == 403
    _sign_in(client, "officer")

    reply = client.post(
        "/contacts/MASH-2026-000007/rerate",
        data={"brag": "RED", "rationale": "forged from another site"},
    )
    assert reply.status_code == 403
    assert not [r for r in store.activity() if r.action.startswith("re-rate")]


def test_every_packet_view_is_recorded_with_the_user_and_the_version(
    settings: ConsoleSettings,
) -> None:
    client, store = _client(settings)
    _sign_in(client, "officer")

    page = client.get("/contacts/MASH-2026-000007")

    assert page.status_code == 200
    assert "Test Child" in page.text  # people by name
    assert "RF-MASH-2026-000007-police" in page.text  # the restricted marker, not its content
    assert "Not answered: health" in page.text
    viewed = [r for r in store.activity("MASH-2026-000007") if r.action == "packet-viewed"]
    assert [(r.user, r.detail) for r in viewed] == [("officer", {"version": "1"})]


def test_a_hub_operator_sees_the_board_but_not_a_childs_packet(
    settings: ConsoleSettings,
) -> None:
    client, store = _client(settings)
    _sign_in(client, "operator")

    assert client.get("/").status_code == 200
    page = client.get("/contacts/MASH-2026-000007")
    assert page.status_code == 403
    assert "Test Child" not in page.text
    assert not [r for r in store.activity() if r.action == "packet-viewed"]


def test_a_screening_officer_may_rerate_but_not_decide(settings: ConsoleSettings) -> None:
    client, _ = _client(settings)
    _sign_in(client, "officer")
    page = client.get("/contacts/MASH-2026-000007").text
    assert "Re-rate" in page and "Record the decision" not in page

    reply = client.post(
        "/contacts/MASH-2026-000007/decide",
        data={"decision": "EARLY_HELP", "rationale": "because", "csrf": _csrf(page)},
    )
    assert reply.status_code == 403


def test_a_rerating_without_a_rationale_is_not_sent(settings: ConsoleSettings) -> None:
    client, store = _client(settings)
    _sign_in(client, "officer")
    token = _csrf(client.get("/contacts/MASH-2026-000007").text)

    reply = client.post(
        "/contacts/MASH-2026-000007/rerate", data={"brag": "RED", "rationale": " ", "csrf": token}
    )

    assert reply.status_code == 400
    assert "Enter the rationale" in reply.text
    assert not [r for r in store.activity() if r.action.startswith("re-rate")]


def test_a_role_changed_by_an_administrator_ends_the_session_it_was_signed_in_with(
    settings: ConsoleSettings,
) -> None:
    client, store = _client(settings)
    _sign_in(client, "officer")
    assert client.get("/contacts/MASH-2026-000007").status_code == 200

    Accounts(store, FAST).add("officer", Role.HUB_OPERATOR, PASSWORD, FRIDAY_4PM)

    assert client.get("/contacts/MASH-2026-000007", follow_redirects=False).status_code == 303
