"""Bad input on the command line and in the settings, as a user types it: every case gets
one line naming the problem, a non-zero exit and no traceback, in bounded time. And what
``mash contact submit`` refuses, the hub refuses too when it comes straight off the broker."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import aio_pika
import pytest

from adapters.kit.service import AdapterService
from broker.consumer import REASON
from broker.signing import OPERATOR
from broker.topology import Topology
from hub.client import HubClient
from schemas.codec import MAX_MESSAGE_BYTES, decode, encode
from schemas.models import MAX_FINDINGS_BYTES, Contact, InformationRequest
from tests.integration.test_cli import contact_json
from tests.support import KnowsEveryone, Stack, make_contact, signed_publisher

# Without a usable broker URL these tests could pass by failing to connect: each case's
# expected line names the real problem instead.


async def run_mash(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mash",
        *args,
        env={**os.environ, "MASH_PREFIX": "cli-bad-unused", **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), 30)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"mash {' '.join(args)} did not finish in 30 s") from None
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def assert_one_clear_line(code: int, err: str, expected: str) -> None:
    assert code != 0
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert expected in err, err


SETTINGS = [
    ({"MASH_DELIVERY_LIMIT": "-1"}, "MASH_DELIVERY_LIMIT: Input should be greater than"),
    ({"MASH_METRICS_PORT": "99999"}, "MASH_METRICS_PORT: Input should be less than"),
    ({"MASH_METRICS_PORT": "abc"}, "MASH_METRICS_PORT: Input should be a valid integer"),
    ({"MASH_PREFIX": "my mash"}, "MASH_PREFIX: use only letters, digits"),
    ({"MASH_AGENCIES": "police,health"}, "MASH_AGENCIES: not in the expected form"),
    ({"MASH_AGENCIES": '["Police Dept"]'}, "MASH_AGENCIES: agency name"),
    ({"MASH_AMQP_URL": "amqp://guest:secret@host:99999/"}, "MASH_AMQP_URL: not a valid URL"),
    ({"MASH_AMQP_URL": "amqp://guest:secret@[::1/"}, "MASH_AMQP_URL: not a valid URL"),
    ({"MASH_AMQP_URL": "garbage"}, "MASH_AMQP_URL: expected an amqp:// or amqps:// URL"),
    ({"MASH_MANAGEMENT_URL": "http://host:port"}, "MASH_MANAGEMENT_URL: not a valid URL"),
    ({"MASH_BROKER_USER_TEMPLATE": "{user}"}, "MASH_BROKER_USER_TEMPLATE: may use only"),
    ({"MASH_DECLARE_TOPOLOGY": "perhaps"}, "MASH_DECLARE_TOPOLOGY: Input should be a valid"),
    ({"MASH_RED_HEAD_START_S": "inf"}, "MASH_RED_HEAD_START_S: Input should be a finite"),
    ({"MASH_ROUTINE_PREFETCH": "0"}, "MASH_ROUTINE_PREFETCH: Input should be greater"),
]


@pytest.mark.parametrize(("env", "expected"), SETTINGS, ids=[next(iter(e)) for e, _ in SETTINGS])
async def test_a_bad_setting_gets_one_line_naming_the_variable(
    env: dict[str, str], expected: str
) -> None:
    code, out, err = await run_mash("hub", env=env)
    assert_one_clear_line(code, err, expected)
    assert code == 2 and out == ""
    assert "secret" not in err  # a broker URL's password is never echoed


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "contacts"
COMMANDS = [
    ("hub",),
    ("adapter", "police"),
    ("contact", "submit", str(EXAMPLE / "green-school-attendance.json")),
    ("contact", "rerate", "MASH-2026-000001", "red"),
    ("status",),
    ("dlq", "list"),
    ("report",),
    ("keys", "list"),
    ("audit", "verify"),
    ("restricted", "read", "MASH-2026-000001"),
    ("broker", "permissions"),
]


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(c[:2]) for c in COMMANDS])
async def test_every_command_refuses_a_bad_setting_with_one_line(args: tuple[str, ...]) -> None:
    code, _, err = await run_mash(*args, env={"MASH_DELIVERY_LIMIT": "-1"})
    assert_one_clear_line(code, err, "MASH_DELIVERY_LIMIT")


USAGE = [
    (("nosuch",), "No such command 'nosuch'"),
    (("contact", "submit"), "Missing argument 'file'"),
    (("contact", "submit", "x.json", "--timeout", "nan"), "Invalid value for '--timeout'"),
    (("contact", "submit", "x.json", "--timeout", "-1"), "Invalid value for '--timeout'"),
    (("demo", "--timeout", "inf"), "Invalid value for '--timeout'"),
    (("contact", "rerate", "MASH-2026-000001", "purple"), "unknown rating 'purple'"),
    (("status", "--bogus"), "No such option: --bogus"),
]


@pytest.mark.parametrize(("args", "expected"), USAGE, ids=[" ".join(a) for a, _ in USAGE])
async def test_a_usage_error_is_one_line_too(args: tuple[str, ...], expected: str) -> None:
    code, out, err = await run_mash(*args)
    assert_one_clear_line(code, err, expected)
    assert code == 2 and out == ""


async def test_an_adapter_refuses_a_bad_head_start_setting_with_one_line() -> None:
    # The adapters read MASH_RED_HEAD_START_S as the hub does (they ignored it before).
    code, out, err = await run_mash("adapter", "police", env={"MASH_RED_HEAD_START_S": "-1"})
    assert_one_clear_line(code, err, "MASH_RED_HEAD_START_S: Input should be greater than")
    assert code == 2 and out == ""


KEYRING_USERS = [
    ("adapter", "police"),
    ("contact", "submit", str(EXAMPLE / "green-school-attendance.json")),
    ("contact", "rerate", "MASH-2026-000001", "red"),
]


@pytest.mark.parametrize("args", KEYRING_USERS, ids=[" ".join(c[:2]) for c in KEYRING_USERS])
async def test_a_missing_key_registry_is_one_line_from_the_root_error(
    args: tuple[str, ...], tmp_path: Path
) -> None:
    # No command catches KeyringError itself any more: mash's main says any MashError.
    missing = tmp_path / "keyring.json"
    code, out, err = await run_mash(*args, env={"MASH_KEYRING": str(missing)})
    assert_one_clear_line(code, err, f"no key registry at {missing}")
    assert code == 1 and out == ""


async def test_a_keyring_setting_naming_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "keyring.json"
    os.mkfifo(fifo)
    code, _, err = await run_mash("keys", "list", env={"MASH_KEYRING": str(fifo)})
    assert_one_clear_line(code, err, "is not a regular file")


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def _contact_with(**changes: object) -> dict[str, object]:
    data = contact_json()
    for key, value in changes.items():
        if key == "date_of_birth":
            data["subjects"][0][key] = value  # type: ignore[index]
        else:
            data[key] = value
    return data


def _bad_file(kind: str, folder: Path) -> Path:
    path = folder / f"{kind}.json"
    if kind == "fifo":
        os.mkfifo(path)  # no writer: reading it whole would wait for ever
    elif kind == "device":
        return Path("/dev/zero")  # never ends
    elif kind == "directory":
        return folder
    elif kind == "deeply-nested":
        path.write_text("[" * 200_000 + "]" * 200_000)
    elif kind == "enormous-integer":
        path.write_text('{"brag": ' + "9" * 10_000 + "}")
    elif kind == "overflowing-float":
        path.write_text('{"brag": 1e999}')
    elif kind == "nan":
        path.write_text('{"brag": NaN}')
    elif kind == "born-in-2999":
        _write(path, _contact_with(date_of_birth="2999-01-01"))
    elif kind == "received-in-2999":
        _write(path, _contact_with(received_at="2999-01-01T10:00:00Z"))
    elif kind == "received-in-year-1":
        _write(path, _contact_with(received_at="0001-01-01T10:00:00Z"))
    elif kind == "just-under-the-message-limit":
        _write(path, _contact_with(concerns_summary="x" * (MAX_MESSAGE_BYTES - 4096)))
    elif kind == "over-the-field-bounds":
        _write(path, _contact_with(concerns_summary="x" * 200_000))
    return path


BAD_FILES = [
    ("fifo", "is not a regular file"),
    ("device", "is not a regular file"),
    ("directory", "is not a regular file"),
    ("deeply-nested", "nested more than 16 levels deep"),
    ("enormous-integer", "number too long"),
    ("overflowing-float", "number out of range"),
    ("nan", "NaN is not a JSON number"),
    ("born-in-2999", "date_of_birth is after the contact"),
    ("received-in-2999", "received_at is in the future"),
    ("received-in-year-1", "received_at: Input should be greater than or equal to 2000"),
    ("just-under-the-message-limit", "more than the 1048576 allowed"),
    ("over-the-field-bounds", "concerns_summary: String should have at most 20000 characters"),
]


@pytest.mark.parametrize(("kind", "expected"), BAD_FILES, ids=[k for k, _ in BAD_FILES])
async def test_a_bad_contact_file_is_refused_before_sending_with_one_line(
    tmp_path: Path, kind: str, expected: str
) -> None:
    path = _bad_file(kind, tmp_path)
    code, out, err = await run_mash("contact", "submit", str(path), "--timeout", "1")
    assert_one_clear_line(code, err, expected)
    assert code == 2 and out == ""


async def _dead_letter_reason(stack: Stack, message_id: str) -> str:
    topology = Topology(stack.settings)
    async with await aio_pika.connect(stack.settings.amqp_url) as connection:
        channel = await connection.channel()
        dead = await channel.get_queue(topology.contact_queue("routine") + ".dead", ensure=False)
        for _ in range(100):
            message = await dead.get(fail=False)
            if message is not None:
                await message.ack()
                if message.message_id == message_id:
                    return str(message.headers.get(REASON))
            else:
                await asyncio.sleep(0.1)
    raise AssertionError(f"{message_id} was not dead-lettered")


async def test_the_hub_dead_letters_a_contact_just_under_the_message_limit(stack: Stack) -> None:
    hub = await stack.hub()
    # Built past the model's bounds, as a client that skips validation would send it.
    summary = "x" * (MAX_MESSAGE_BYTES - 4096)
    huge = Contact.model_construct(
        **{**dict(make_contact()), "contact_id": "huge-1", "concerns_summary": summary}
    )
    body = encode(huge)
    assert MAX_MESSAGE_BYTES - 8192 < len(body) < MAX_MESSAGE_BYTES
    async with await aio_pika.connect(stack.settings.amqp_url) as connection:
        operator = await signed_publisher(connection, stack.settings, OPERATOR)
        await operator.publish(stack.topology.contacts, "routine", body, message_id="huge-1")
    assert await _dead_letter_reason(stack, "huge-1") == "invalid-content"
    assert hub.store.count_contacts() == 0


async def test_the_hub_refuses_a_contact_received_in_the_future(stack: Stack) -> None:
    hub = await stack.hub()
    reason = "received-in-future"
    contact = make_contact().model_copy(update={"received_at": datetime(2999, 1, 1, tzinfo=UTC)})
    async with HubClient(stack.settings) as client:
        reply = await client.submit(contact, timeout=15)
    assert not reply.ok and reply.error is not None and reason in reply.error
    assert await _dead_letter_reason(stack, contact.contact_id) == reason
    assert hub.store.count_contacts() == 0


async def test_the_hub_dead_letters_an_answer_past_its_share_of_the_packet(stack: Stack) -> None:
    await stack.hub()
    async with HubClient(stack.settings) as client:
        await client.submit(make_contact(agencies=["police"]))
    topology = Topology(stack.settings)
    async with await aio_pika.connect(stack.settings.amqp_url) as connection:
        channel = await connection.channel()
        requests = await channel.get_queue(topology.request_queue("police", "routine"))
        message = await requests.get(timeout=5)
        await message.ack()
        request = decode(message.body, InformationRequest)
        answer = AdapterService(KnowsEveryone("police"), stack.settings).answer(request)
        # Findings one byte past the bound: ten such answers would not fit in one packet.
        oversized = answer.model_copy(update={"findings": bytes(MAX_FINDINGS_BYTES + 1)})
        police = await signed_publisher(connection, stack.settings, "police")
        await police.publish_model(topology.answers, "routine", oversized, message_id="big-1")
        dead = await channel.get_queue(topology.answer_queue("routine") + ".dead", ensure=False)
        for _ in range(100):
            got = await dead.get(fail=False)
            if got is not None:
                break
            await asyncio.sleep(0.1)
        assert got is not None, "the oversized answer was not dead-lettered"
        await got.ack()
        assert got.message_id == "big-1"
        assert got.headers[REASON] == "invalid-content"


async def test_the_hub_dead_letters_a_contact_received_in_year_1(stack: Stack) -> None:
    hub = await stack.hub()
    # Past the model's date bound, as a client that skips validation would send it; it once
    # got reference MASH-1-000001 and a deadline already passed.
    ancient = Contact.model_construct(
        **{
            **dict(make_contact()),
            "contact_id": "year-1",
            "received_at": datetime(1, 1, 1, tzinfo=UTC),
        }
    )
    async with await aio_pika.connect(stack.settings.amqp_url) as connection:
        operator = await signed_publisher(connection, stack.settings, OPERATOR)
        await operator.publish(
            stack.topology.contacts, "routine", encode(ancient), message_id="year-1"
        )
    assert await _dead_letter_reason(stack, "year-1") == "invalid-content"
    assert hub.store.count_contacts() == 0
