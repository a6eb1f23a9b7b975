"""One whole bench run: the three flows back to back, then priority, scale and per-message
cost, each figure with its target.

Every flow gets its own prefix, processes, database and keys, and removes its queues when
it is done; a phase that fails leaves its figures empty (``n/a``) and says why, and the run
goes on to the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aio_pika

from bench.cost import measure_cost
from bench.driver import Flow, Paced, Saturated, paced, saturate
from bench.mashhub import MashHubFlow
from bench.peer import PeerFlow
from bench.priority import run_priority
from bench.processes import DISRUPTIONS, BenchError
from bench.profile import summarise
from bench.raw import RawFlow
from bench.report import Report, machine_facts
from bench.scale import run_scale
from bench.workload import Sizes, make_keys, measure_sizes
from broker.settings import BrokerSettings

__all__ = ["BenchOptions", "run_bench"]

Progress = Callable[[str], None]

# The targets of issue 7.
MIN_VS_RAW = 0.75
MIN_VS_PEER = 1.5
MAX_P99_VS_RAW = 2.0
MAX_RED_MS = 1000.0
MAX_READY_S = 5.0
MAX_DEADLINE_LAG_MS = 1000.0
MAX_RSS_MIB = 300.0


@dataclass(frozen=True)
class BenchOptions:
    contacts: int = 2000
    quick: bool = False
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    # Paced (latency) phase: this many seconds at half of the flow's own peak.
    paced_seconds: float = 20.0
    paced_minimum: int = 200  # contacts, so that p99 is more than the slowest one
    window: int = 256  # submissions in flight during the saturated phase
    warmup: int = 100  # contacts through each flow before anything is timed
    backlog_contacts: int = 2500  # x 4 agencies = 10,000 queued Green requests
    scale_contacts: int = 100_000
    scale_deadlines: int = 2000
    deadline_lead: float = 3.0
    deadline_window: float = 10.0
    cost_iterations: int = 2000
    profile_dir: Path | None = None
    keep: bool = False

    @classmethod
    def for_run(cls, *, quick: bool, contacts: int | None = None, **kwargs: Any) -> BenchOptions:
        url = BrokerSettings().amqp_url
        if quick:
            # Small enough for 'make test': every figure, none of them meaningful.
            options = cls(
                contacts=20,
                quick=True,
                warmup=5,
                amqp_url=url,
                paced_seconds=1.0,
                paced_minimum=10,
                backlog_contacts=25,
                scale_contacts=1000,
                scale_deadlines=50,
                deadline_lead=1.0,
                deadline_window=0.2,
                cost_iterations=50,
            )
        else:
            options = cls(amqp_url=url)
        if contacts is not None:
            options = replace(options, contacts=contacts)
        return replace(options, **kwargs)


async def _rabbitmq_version(url: str) -> str:
    """The broker's version; also the check that it answers at all."""
    try:
        connection = await aio_pika.connect(url)
    except (OSError, aio_pika.exceptions.AMQPError) as exc:
        where = url.rsplit("@", 1)[-1]
        raise BenchError(f"cannot reach the broker at {where}: {exc}") from None
    async with connection:
        with contextlib.suppress(AttributeError):
            properties = connection.transport.connection.server_properties  # type: ignore[union-attr]
            version = properties.get("version", b"?")
            return version.decode() if isinstance(version, bytes) else str(version)
    return "unknown"


@dataclass(frozen=True)
class FlowResult:
    saturated: Saturated
    paced: Paced


async def _run_flow(flow: Flow, options: BenchOptions, progress: Progress) -> FlowResult:
    try:
        started = time.perf_counter()
        await flow.start()
        progress(f"{flow.name}: processes ready in {time.perf_counter() - started:.1f}s")
        await saturate(flow, options.warmup, f"{flow.name}-warm", window=options.window)
        saturated = await saturate(
            flow, options.contacts, f"{flow.name}-sat", window=options.window
        )
        progress(
            f"{flow.name}: {saturated.done}/{saturated.contacts} contacts in "
            f"{saturated.seconds:.1f}s = {saturated.rate:.1f}/s"
        )
        rate = max(saturated.rate / 2, 0.5)
        count = int(min(max(rate * options.paced_seconds, options.paced_minimum), 5000))
        measured = await paced(flow, rate, count, f"{flow.name}-lat")
        summary = measured.summary_ms()
        progress(
            f"{flow.name}: {count} contacts paced at {rate:.1f}/s, "
            f"p50 {summary.get('p50', 0):.0f} ms, p99 {summary.get('p99', 0):.0f} ms"
        )
        return FlowResult(saturated, measured)
    finally:
        await flow.stop()


async def _phase(
    report: Report, name: str, action: Awaitable[Any], progress: Progress
) -> Any | None:
    try:
        return await action
    except Exception as exc:
        report.errors.append(f"{name}: {type(exc).__name__}: {exc}")
        progress(f"{name} failed: {type(exc).__name__}: {exc}")
        return None


def _met(value: float | None, ok: Callable[[float], bool]) -> bool | None:
    return None if value is None else ok(value)


async def run_bench(options: BenchOptions, progress: Progress) -> Report:
    run_id = uuid.uuid4().hex[:8]
    report = Report(
        quick=options.quick,
        contacts=options.contacts,
        machine=machine_facts(await _rabbitmq_version(options.amqp_url)),
    )
    workdir = Path(tempfile.mkdtemp(prefix="mash-bench-"))
    # Every name on the broker is under one of these, and removed when its phase ends.
    report.details["prefixes"] = [
        f"bench-{run_id}-{flow}" for flow in ("raw", "peer", "hub", "prio", "scale")
    ]
    try:
        sizes = measure_sizes(make_keys(workdir / "size-keys"))
        report.details["message_bytes"] = sizes.as_dict()
        progress(
            f"message sizes (bytes): contact {sizes.contact}, request {sizes.request}, "
            f"answer {sizes.answer}, packet {sizes.packet}"
        )

        async def flows() -> None:
            results = await _run_flows(report, options, workdir, run_id, sizes, progress)
            _flow_figures(report, results)

        phases = [
            flows(),
            _priority(report, options, workdir, run_id, progress),
            _scale(report, options, workdir, run_id, progress),
        ]
        if options.quick:
            # Nothing a quick run finds is a measurement, so its phases may share the CPUs.
            await asyncio.gather(*phases)
        else:
            for phase in phases:
                await phase
        _cost(report, options, workdir, progress)
        order = ["throughput", "ratio", "latency", "priority", "scale", "cost"]
        report.figures.sort(key=lambda f: order.index(f.key.split(".")[0]))
    finally:
        if DISRUPTIONS:
            report.details["disruptions"] = list(DISRUPTIONS)
            report.warnings.append(
                "the broker force-closed connections of this run (someone else's test or an "
                "operator): " + "; ".join(DISRUPTIONS)
            )
        report.details["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        if options.keep:
            progress(f"kept logs and databases in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return report


async def _run_flows(
    report: Report,
    options: BenchOptions,
    workdir: Path,
    run_id: str,
    sizes: Sizes,
    progress: Progress,
) -> dict[str, FlowResult | None]:
    url = options.amqp_url
    if options.profile_dir is not None:
        options.profile_dir.mkdir(parents=True, exist_ok=True)
    makers: dict[str, Callable[[], Flow]] = {
        "raw": lambda: RawFlow(url, f"bench-{run_id}-raw", workdir / "raw", sizes),
        "peer": lambda: PeerFlow(url, f"bench-{run_id}-peer", workdir / "peer", sizes),
        "mash-hub": lambda: MashHubFlow(
            url, f"bench-{run_id}-hub", workdir / "mash-hub", profile_dir=options.profile_dir
        ),
    }
    results: dict[str, FlowResult | None] = {}
    for name, make in makers.items():
        results[name] = await _phase(report, name, _run_flow(make(), options, progress), progress)
    hub = results.get("mash-hub")
    if options.profile_dir is not None and hub is not None:
        contacts = max(10, options.contacts // 20) + hub.saturated.contacts + hub.paced.contacts
        profiles = {}
        for process in ("hub", "adapter-police"):
            path = options.profile_dir / f"{process}.txt"
            if path.exists():
                summary = summarise(path, process)
                profiles[process] = summary.as_dict(contacts)
                progress(summary.render(contacts))
        report.details["profile"] = {"contacts": contacts, "processes": profiles}
    return results


def _flow_figures(report: Report, flows: dict[str, FlowResult | None]) -> None:
    rates: dict[str, float | None] = {}
    p99: dict[str, float | None] = {}
    for name, result in flows.items():
        rates[name] = None if result is None else result.saturated.rate
        report.add(
            f"throughput.{name}",
            f"{name} throughput",
            rates[name],
            "contacts/s",
            note="" if result is None else f"{result.saturated.done} contacts at saturation",
        )
    hub, raw, peer = rates["mash-hub"], rates["raw"], rates["peer"]
    vs_raw = hub / raw if hub is not None and raw else None
    vs_peer = hub / peer if hub is not None and peer else None
    report.add(
        "ratio.mashhub_raw",
        "mash-hub / raw",
        vs_raw,
        "x",
        target=f">= {MIN_VS_RAW}x",
        met=_met(vs_raw, lambda v: v >= MIN_VS_RAW),
    )
    report.add(
        "ratio.mashhub_peer",
        "mash-hub / peer",
        vs_peer,
        "x",
        target=f">= {MIN_VS_PEER}x",
        met=_met(vs_peer, lambda v: v >= MIN_VS_PEER),
    )
    for name, result in flows.items():
        summary = {} if result is None else result.paced.summary_ms()
        p99[name] = summary.get("p99")
        note = (
            ""
            if result is None
            else f"{result.paced.contacts} contacts at {result.paced.rate:.1f}/s (half its peak)"
        )
        for q in ("p50", "p95", "p99"):
            report.add(
                f"latency.{name}.{q}",
                f"{name} latency {q}",
                summary.get(q),
                "ms",
                note=note if q == "p99" else "",
            )
    ratio = p99["mash-hub"] / p99["raw"] if p99["mash-hub"] is not None and p99["raw"] else None
    report.add(
        "latency.p99_ratio",
        "mash-hub p99 / raw p99",
        ratio,
        "x",
        target=f"<= {MAX_P99_VS_RAW}x",
        met=_met(ratio, lambda v: v <= MAX_P99_VS_RAW),
    )


async def _priority(
    report: Report, options: BenchOptions, workdir: Path, run_id: str, progress: Progress
) -> None:
    progress(f"priority: {options.backlog_contacts} Green contacts queued, then one Red")
    result = await _phase(
        report,
        "priority",
        run_priority(
            options.amqp_url, f"bench-{run_id}-prio", workdir / "priority", options.backlog_contacts
        ),
        progress,
    )
    red_ms = None if result is None or result.red_seconds is None else result.red_seconds * 1000
    report.add(
        "priority.red_ms",
        "Red behind Green backlog",
        red_ms,
        "ms",
        target=f"<= {MAX_RED_MS:.0f} ms",
        met=_met(red_ms, lambda v: v <= MAX_RED_MS),
        note=""
        if result is None
        else f"behind {result.backlog_requests} queued Green requests; "
        f"{result.green_packets_before_red} Green packets came out first",
    )
    if result is not None:
        report.details["priority_red_timeline_s"] = result.red_timeline
        report.details["priority_outbox"] = {
            "at_red": result.outbox_at_red,
            "peak": result.outbox_peak,
        }
        progress(
            f"  hub outbox: {result.outbox_at_red} rows when Red was submitted, "
            f"peak {result.outbox_peak}"
        )
        for step, seconds in result.red_timeline:
            progress(f"  red +{seconds * 1000:8.0f} ms  {step}")
    report.add(
        "priority.backlog_drain_s",
        "Green backlog drained",
        None if result is None else result.backlog_drain_seconds,
        "s",
        note="" if result is None else f"{options.backlog_contacts} contacts after the restart",
    )


async def _scale(
    report: Report, options: BenchOptions, workdir: Path, run_id: str, progress: Progress
) -> None:
    progress(f"scale: building a hub database with {options.scale_contacts:,} open contacts")
    result = await _phase(
        report,
        "scale",
        run_scale(
            options.amqp_url,
            f"bench-{run_id}-scale",
            workdir / "scale",
            options.scale_contacts,
            options.scale_deadlines,
            lead=options.deadline_lead,
            window=options.deadline_window,
        ),
        progress,
    )
    ready = None if result is None else result.start_to_ready_seconds
    lag = None if result is None else result.deadline_lag_ms.get("p99")
    rss = None if result is None else result.rss_peak_mb
    report.add(
        "scale.start_to_ready_s",
        "hub start to ready",
        ready,
        "s",
        target=f"<= {MAX_READY_S:.0f} s",
        met=_met(ready, lambda v: v <= MAX_READY_S),
        note=""
        if result is None
        else f"{result.open_contacts:,} open contacts, {result.db_megabytes:.0f} MB database "
        f"(built in {result.build_seconds:.0f}s)",
    )
    report.add(
        "scale.deadline_lag_p99_ms",
        "deadline firing lag p99",
        lag,
        "ms",
        target=f"<= {MAX_DEADLINE_LAG_MS:.0f} ms",
        met=_met(lag, lambda v: v <= MAX_DEADLINE_LAG_MS),
        note=""
        if result is None
        else f"{result.deadlines_fired}/{result.deadlines} deadlines due over "
        f"{result.deadline_window_seconds:g}s; p50 {result.deadline_lag_ms.get('p50', 0):.0f} ms,"
        f" max {result.deadline_lag_ms.get('max', 0):.0f} ms",
    )
    fired = None if result is None else result.deadlines_fired
    report.add(
        "scale.deadlines_per_s",
        "deadline packets out",
        fired / result.firing_seconds if result and fired and result.firing_seconds else None,
        "per s",
        note=""
        if result is None
        else f"{result.deadlines / result.deadline_window_seconds:.0f}/s fell due",
    )
    report.add(
        "scale.rss_peak_mib",
        "hub resident memory peak",
        rss,
        "MiB",
        target=f"< {MAX_RSS_MIB:.0f} MiB",
        met=_met(rss, lambda v: v < MAX_RSS_MIB),
        note="" if result is None else f"{result.rss_at_ready_mb:.0f} MiB at ready",
    )
    if result is not None:
        report.details["scale"] = {
            "open_contacts": result.open_contacts,
            "build_seconds": result.build_seconds,
            "db_megabytes": result.db_megabytes,
            "deadline_lag_ms": result.deadline_lag_ms,
        }


def _cost(report: Report, options: BenchOptions, workdir: Path, progress: Progress) -> None:
    progress("per-message cost of a police answer with restricted findings")
    try:
        result = measure_cost(make_keys(workdir / "cost-keys"), options.cost_iterations)
    except Exception as exc:
        report.errors.append(f"cost: {type(exc).__name__}: {exc}")
        result = None
    micros = {} if result is None else result.micros
    note = (
        ""
        if result is None
        else f"Avro {result.avro_bytes} bytes vs JSON {result.json_bytes} bytes"
    )
    labels = {
        "send": "answer encode+sign+seal",
        "receive": "answer verify+decode+open",
        "round_trip": "answer round trip",
        "json_round_trip": "same content as JSON",
    }
    for key, label in labels.items():
        report.add(f"cost.{key}_us", label, micros.get(key), "us")
    round_trip, plain = micros.get("round_trip"), micros.get("json_round_trip")
    report.add(
        "cost.vs_json",
        "round trip / JSON",
        round_trip / plain if round_trip is not None and plain else None,
        "x",
        note=note,
    )
    report.details["cost_us"] = micros
