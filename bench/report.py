"""What a bench run found: every figure with its target and whether it was met, printed for
people and written as JSON for machines.

Timings here are measurements, never pass/fail tests: ``met`` says whether a target held on
this machine in this run, and the report says what the machine was doing at the time.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Figure", "Report", "machine_facts"]


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    value: float | None
    unit: str
    target: str = ""
    met: bool | None = None  # None: a figure without a target, or one that could not be had
    note: str = ""

    def shown(self) -> str:
        if self.value is None:
            return "n/a"
        if abs(self.value) >= 100 or self.value == int(self.value):
            return f"{self.value:,.0f} {self.unit}".strip()
        return f"{self.value:,.2f} {self.unit}".strip()


@dataclass
class Report:
    quick: bool
    contacts: int
    machine: dict[str, Any]
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    # What makes the figures less clean without stopping the run.
    warnings: list[str] = field(default_factory=list)

    def add(
        self,
        key: str,
        label: str,
        value: float | None,
        unit: str,
        *,
        target: str = "",
        met: bool | None = None,
        note: str = "",
    ) -> None:
        self.figures.append(Figure(key, label, value, unit, target, met, note))

    def figure(self, key: str) -> Figure | None:
        return next((f for f in self.figures if f.key == key), None)

    def value(self, key: str) -> float | None:
        found = self.figure(key)
        return None if found is None else found.value

    def as_dict(self) -> dict[str, Any]:
        return {
            "quick": self.quick,
            "contacts": self.contacts,
            "machine": self.machine,
            "figures": {f.key: asdict(f) for f in self.figures},
            "details": self.details,
            "errors": self.errors,
            "warnings": self.warnings,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, default=str)

    def render(self) -> str:
        quick = " --quick (scaled down: figures are not comparable)" if self.quick else ""
        lines = [
            "mash bench" + quick,
            _machine_line(self.machine),
            "",
        ]
        width = max((len(f.label) for f in self.figures), default=10)
        for f in self.figures:
            verdict = {True: "met", False: "NOT MET", None: ""}[f.met]
            target = f"target {f.target}" if f.target else ""
            row = f"  {f.label:<{width}}  {f.shown():>16}  {target:<26} {verdict}".rstrip()
            lines.append(row)
            if f.note:
                lines.append(f"  {'':<{width}}  {'':>16}  {f.note}")
        for error in self.errors:
            lines.append(f"  error: {error}")
        for warning in self.warnings:
            lines.append(f"  warning: {warning}")
        return "\n".join(lines)


def _machine_line(machine: dict[str, Any]) -> str:
    return (
        f"{machine.get('cpu_model', '?')} x{machine.get('nproc', '?')}, "
        f"{machine.get('memory_gb', '?')} GB, RabbitMQ {machine.get('rabbitmq', '?')}, "
        f"Python {machine.get('python', '?')}, load {machine.get('loadavg_start', '?')}"
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def machine_facts(rabbitmq: str) -> dict[str, Any]:
    """What the figures depend on; the load average shows whether others shared the CPUs."""
    return {
        "cpu_model": _cpu_model(),
        "nproc": os.cpu_count(),
        "memory_gb": _memory_gb(),
        "rabbitmq": rabbitmq,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "loadavg_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
