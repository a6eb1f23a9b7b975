"""``mash report --exchanges`` as an operator reads it: one exchange per line, under a header
row that names each column (the same names as the JSON keys)."""

from __future__ import annotations

import json

import pytest

from hub.client import HubClient
from tests.ops_support import cli_env, mash_cli, wait_for
from tests.support import Stack, make_contact

pytestmark = pytest.mark.broker


async def test_the_exchange_listing_has_a_header_row_naming_each_column(stack: Stack) -> None:
    hub = await stack.hub()
    env = cli_env(stack.settings)
    code, out, _ = await mash_cli("report", "--exchanges", env=env)
    assert (code, out.strip()) == (0, "No requests were sent in this period.")

    await stack.adapters(["police"])
    async with HubClient(stack.settings) as client:
        reply = await client.submit(make_contact(agencies=["police"]))
    await wait_for(lambda: hub.store.db.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 1)

    code, out, _ = await mash_cli("report", "--exchanges", env=env)
    assert code == 0
    header, row = (line.split("\t") for line in out.splitlines())
    code, listed, _ = await mash_cli("report", "--exchanges", "--json", env=env)
    [record] = json.loads(listed)
    assert header == list(record)
    shown = dict(zip(header, row, strict=True))
    assert (shown["ref"], shown["agency"], shown["status"]) == (
        reply.contact_ref,
        "police",
        "answered",
    )
