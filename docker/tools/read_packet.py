"""Read a contact's packet back from the screening packets queue, as the screening UI does.

Used by ``make docker-check`` from a container holding the screening role's certificate:
packets are believed only when the hub signed them, and the line printed names the contact,
the packet's reason and the agencies that answered (never a child's details). Exit 0 once a
packet for REF has answers from every agency in --expect; 1 if none arrives in time.

    python read_packet.py MASH-2026-000001 --expect police,health --timeout 90
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from aio_pika.abc import AbstractIncomingMessage

from broker.connection import connect
from broker.keyring import Keyring, KeyringError
from broker.settings import BrokerSettings
from broker.signing import SignatureRefused, Verifier
from broker.topology import Topology
from schemas.codec import decode
from schemas.models import ScreeningPacket


async def wait_for(ref: str, expect: set[str], timeout: float) -> bool:
    settings = BrokerSettings()
    verifier = Verifier(Keyring.load(settings.keyring))
    done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    async def on_packet(message: AbstractIncomingMessage) -> None:
        try:
            verifier.verify(
                message.headers, message.message_id, message.type, message.body, frozenset({"hub"})
            )
        except SignatureRefused as exc:
            print(f"refused a packet: {exc}", file=sys.stderr)
            await message.reject()
            return
        packet = decode(message.body, ScreeningPacket)
        # Packets of other contacts are acknowledged too: this reader is the only screening
        # consumer in the check, and a packet left unacked would come back to it forever.
        await message.ack()
        if packet.contact_ref != ref:
            return
        answered = sorted({answer.agency for answer in packet.answers})
        missing = ",".join(packet.missing_agencies) or "-"
        print(
            f"{packet.contact_ref} v{packet.version} {packet.reason.value}: "
            f"answered {','.join(answered) or '-'}; missing {missing}"
        )
        if expect <= set(answered) and not done.done():
            done.set_result(True)

    connection = await connect(settings, "docker-check-screening")
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(Topology(settings).packet_queue, passive=True)
        await queue.consume(on_packet)
        return await asyncio.wait_for(done, timeout)
    except TimeoutError:
        return False
    finally:
        await connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ref")
    parser.add_argument("--expect", default="", help="agencies that must have answered")
    parser.add_argument("--timeout", type=float, default=90.0)
    args = parser.parse_args()
    expect = {agency for agency in args.expect.split(",") if agency}
    try:
        found = asyncio.run(wait_for(args.ref, expect, args.timeout))
    except (KeyringError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not found:
        print(
            f"error: no packet for {args.ref} answered by {args.expect} within {args.timeout:g}s",
            file=sys.stderr,
        )
    return 0 if found else 1


if __name__ == "__main__":
    sys.exit(main())
