"""``mash demo``: the hub and five adapters (the four default agencies and children's social
care) as separate processes on the local broker, the seeds' two case studies and a few
ordinary contacts, one Amber-to-Red re-rating mid-flight, and each assembled packet printed as
the screening UI would receive it: a child with an allocated lead professional has the
contact sent straight on to them, and a baby's second contact shows the first in its
chronology.

The demo runs under a name prefix of its own, so it never touches another MASH's queues,
and removes its queues and exchanges at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import defaultdict
from pathlib import Path

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from rich.console import Console

from broker.keyring import Keyring, ensure_keys
from broker.settings import BrokerSettings
from broker.signing import OPERATOR, Verifier
from broker.topology import LANES, Topology, delete
from hub.client import HubClient
from hub.intake import load_contact_file
from mash.screening import render_packet, render_routed
from schemas.enums import Brag
from schemas.models import AllocatedContact, Contact, ScreeningPacket
from screening.client import ScreeningClient

__all__ = ["EXAMPLES", "run_demo"]

# The source tree's examples; an installed copy (a container image) runs from a directory
# that holds them instead.
_SOURCE_EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "contacts"
EXAMPLES = _SOURCE_EXAMPLES if _SOURCE_EXAMPLES.is_dir() else Path("examples") / "contacts"
CASE_RERATED = "case-17-year-old-drugs-warrant.json"
DEMO_USER = "demo-manager"
# As in the seeds: once these agencies have answered, the manager re-rates the case to Red.
RERATE_AFTER = frozenset({"police", "health"})
# Agencies take a moment each, as their checks would, so the re-rating lands mid-flight.
ANSWER_DELAYS = {
    "police": 1.0,
    "health": 1.5,
    "social-care": 2.0,
    "education": 3.0,
    "housing": 3.5,
}


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    # Owner-only, like every file the MASH writes: a log names references and agencies.
    handle = os.fdopen(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
    return subprocess.Popen(
        [sys.executable, "-m", "mash", *args], env=env, stdout=handle, stderr=handle
    )


def _console_ready(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"{address}/healthz", timeout=1) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


async def _start_console(
    env: dict[str, str], workdir: Path, port: int, processes: dict[str, subprocess.Popen[bytes]]
) -> tuple[str, str] | None:
    """The MASH console on ``port`` with a demo manager's account; its address and password,
    or None (with the console's exit in ``processes``) when it did not come up."""
    password = secrets.token_urlsafe(12)
    added = subprocess.run(
        [
            sys.executable,
            "-m",
            "mash",
            "console",
            "user",
            "add",
            DEMO_USER,
            "--role",
            "mash-manager",
            "--password-stdin",
        ],
        env=env,
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    if added.returncode != 0:
        return None
    processes["console"] = _start(["console", "--port", str(port)], env, workdir / "console.log")
    address = f"http://127.0.0.1:{port}"
    for _ in range(300):
        if processes["console"].poll() is not None:
            return None
        if await asyncio.to_thread(_console_ready, address):
            return address, password
        await asyncio.sleep(0.1)
    return None


async def run_demo(
    *,
    timeout: float,
    keep: bool,
    console: Console,
    exit_when_done: bool = True,
    console_port: int = 8400,
) -> int:
    contacts: dict[str, Contact] = {}
    paths = sorted(EXAMPLES.glob("*.json"))
    if not paths:
        console.print(f"[red]no example contacts in {EXAMPLES.resolve()}")
        return 2
    for path in paths:
        contacts[path.name] = load_contact_file(path)
    prefix = f"demo-{uuid.uuid4().hex[:8]}"
    workdir = Path(tempfile.mkdtemp(prefix="mash-demo-"))
    # The demo's own keys: every sender signs, and the restricted file has its sealing key.
    keys = workdir / "keys"
    ring = Keyring(keys / "keyring.json")
    ensure_keys(ring, keys / "private", ["hub", OPERATOR, *ANSWER_DELAYS])
    ring.save()
    settings = BrokerSettings(
        prefix=prefix,
        keyring=ring.path,
        key_dir=keys / "private",
        agencies=tuple(ANSWER_DELAYS),
    )
    verifier = Verifier(ring)
    env = {
        **os.environ,
        "MASH_PREFIX": prefix,
        "MASH_DB_PATH": str(workdir / "hub.sqlite3"),
        "MASH_AMQP_URL": settings.amqp_url,
        "MASH_KEYRING": str(settings.keyring),
        "MASH_KEY_DIR": str(settings.key_dir),
        # Children's social care is opt-in; the demo asks it alongside the default four.
        "MASH_AGENCIES": json.dumps(list(ANSWER_DELAYS)),
        "MASH_CONSOLE_DB": str(workdir / "console.sqlite3"),
    }
    console.rule("[bold]mash-hub demo")
    # The folder is removed after a clean run; a failed run (or --keep) keeps it and says so.
    console.print(
        f"broker {settings.amqp_url.split('@')[-1]}, prefix {prefix}, logs in {workdir} "
        "(kept if the demo fails or with --keep)"
    )
    processes = {"hub": _start(["hub", "--log-format", "json"], env, workdir / "hub.log")}
    for agency, delay in ANSWER_DELAYS.items():
        processes[agency] = _start(
            ["adapter", agency, "--answer-delay", str(delay)], env, workdir / f"{agency}.log"
        )
    packets: dict[str, ScreeningPacket] = {}
    all_arrived = asyncio.Event()
    succeeded = False
    expected: set[str] = set()
    try:
        if not exit_when_done:
            # The screening team's own screen, up before the first contact.
            started_console = await _start_console(env, workdir, console_port, processes)
            if started_console is None:
                console.print(
                    f"[red]the MASH console did not start on port {console_port} (in use? "
                    f"try --console-port); its log is {workdir / 'console.log'}"
                )
                return 1
            address, password = started_console
            console.print(
                f"[bold]MASH console: {address}[/]  sign in as [bold]{DEMO_USER}[/] "
                f"with password [bold]{password}[/] (MASH manager)"
            )
        async with (
            HubClient(settings, name="mash-demo") as client,
            ScreeningClient(settings, "mash-demo-screening") as screening,
        ):
            topology = client.topology

            async def on_packet(packet: ScreeningPacket) -> None:
                # The product's screening client: only packets the hub signed get here.
                packets[packet.contact_ref] = packet
                console.print(render_packet(packet))
                if expected and expected <= packets.keys():
                    all_arrived.set()

            async def on_routed(routed: AllocatedContact) -> None:
                # What the allocated worker's team receives: the contact, sent on.
                console.print(render_routed(routed))

            await screening.subscribe(ScreeningPacket, on_packet)
            await screening.subscribe(AllocatedContact, on_routed)
            connection = await aio_pika.connect(settings.amqp_url)
            async with connection:
                channel = await connection.channel()

                # The manager hears from police and health as their answers go out: a copy of
                # the answers exchange, not the hub's database, because a Red contact's head
                # start may hold routine answers back in the hub's queue for a few seconds.
                answered: dict[str, set[str]] = defaultdict(set)
                agencies = frozenset(ANSWER_DELAYS)

                async def on_answer(message: AbstractIncomingMessage) -> None:
                    sender = verifier.verify(
                        message.headers, message.message_id, message.type, message.body, agencies
                    )
                    answered[message.correlation_id or ""].add(sender)

                copies = await channel.declare_queue(exclusive=True, auto_delete=True)
                for lane in LANES:
                    await copies.bind(topology.answers, lane)
                await copies.consume(on_answer, no_ack=True)

                started = time.monotonic()
                refs: dict[str, str] = {}
                for name, contact in contacts.items():
                    reply = await client.submit(contact, timeout=60)
                    if not reply.ok or reply.contact_ref is None:
                        console.print(f"[red]the hub refused {name}: {reply.error}")
                        return 1
                    refs[name] = reply.contact_ref
                    console.print(
                        f"submitted {name:<42} → {reply.contact_ref} "
                        f"({contact.brag.value}, due {reply.deadline:%a %d %b %H:%M} UTC)"
                    )
                expected.update(refs.values())

                rerated = refs.get(CASE_RERATED)
                if rerated is not None:
                    # As in the seeds: police and health answer, the picture worsens, and the
                    # manager re-rates to Red while education and housing are still checking.
                    while not answered[rerated] >= RERATE_AFTER:
                        if time.monotonic() - started > timeout:
                            console.print(f"[red]police and health never answered {rerated}")
                            return 1
                        await asyncio.sleep(0.05)
                    checking = sorted(agencies - answered[rerated])
                    reply = await client.rerate(rerated, Brag.RED, timeout=30)
                    if not reply.ok or reply.deadline is None:
                        console.print(f"[red]the hub refused the re-rating: {reply.error}")
                        return 1
                    console.print(
                        f"[bold red]re-rated {rerated} AMBER → RED[/] while "
                        f"{', '.join(checking) or 'no agency'} still checking: answers now due "
                        f"by {reply.deadline:%a %d %b %H:%M} UTC; outstanding agencies told"
                    )
                while not all_arrived.is_set():
                    dead = [(n, p) for n, p in processes.items() if p.poll() is not None]
                    if dead:
                        name, process = dead[0]
                        console.print(
                            f"[red]the {name} process exited with status {process.returncode}; "
                            f"its log is {workdir / name}.log"
                        )
                        return 1
                    if time.monotonic() - started > timeout:
                        missing = sorted(expected - packets.keys())
                        console.print(f"[red]timed out waiting for packets: {', '.join(missing)}")
                        return 1
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(all_arrived.wait(), 0.5)
        console.rule(
            f"{len(packets)} packets assembled in {time.monotonic() - started:.1f}s; "
            "every contact answered"
        )
        if rerated is not None:
            # The demo says what it shows only if it showed it: the re-rated case's packet is
            # Red and carries its rating history.
            final = packets[rerated]
            history = [change.brag for change in final.rating_history]
            if final.brag is not Brag.RED or history[-2:] != [Brag.AMBER, Brag.RED]:
                console.print(
                    f"[red]{rerated}'s packet shows {final.brag.value} "
                    f"(ratings {', '.join(b.value for b in history)}): the re-rating did not land"
                )
                return 1
        succeeded = True
        if not exit_when_done:
            console.print(
                f"[bold]The MASH console is at {address}[/] (user [bold]{DEMO_USER}[/], password "
                f"[bold]{password}[/]): read the packets, re-rate, record decisions. "
                "Ctrl-C to stop the demo."
            )
            while all(p.poll() is None for p in processes.values()):
                await asyncio.sleep(0.5)
            stopped = next(n for n, p in processes.items() if p.poll() is not None)
            console.print(f"[red]the {stopped} process stopped; its log is {workdir / stopped}.log")
            succeeded = False
            return 1
        return 0
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        if not keep:
            with contextlib.suppress(Exception):
                async with await aio_pika.connect(settings.amqp_url) as connection:
                    await delete(connection, Topology(settings))
        if keep or not succeeded:
            console.print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
