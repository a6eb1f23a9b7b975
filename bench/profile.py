"""Where the time goes: a summary of py-spy's raw (collapsed-stack) profiles.

Each sample is attributed to the innermost frame that belongs to a known part (SQLite
commits, SQL statements and the audit chain, Avro, pydantic, signatures, sealing, AMQP, the
event loop, logging, matching), so C code is charged to the Python frame that called it:
an fsync inside ``COMMIT`` shows as the store's ``transaction`` frame. Start-up (imports)
is left out, and so are samples waiting in epoll for work (idle). What is left is busy
time: running, or blocked in a system call such as the fsync of a commit.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CATEGORIES", "ProfileSummary", "summarise"]

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*):(?P<line>\d+)\)$")

# (category, file fragment, function or None); the innermost matching frame wins.
CATEGORIES: tuple[tuple[str, str, str | None], ...] = (
    ("SQLite BEGIN/COMMIT (fsync)", "hub/store.py", "transaction"),
    ("SQLite statements", "hub/store.py", None),
    ("audit chain (SQL + SHA-256)", "hub/audit.py", None),
    ("SQLite statements", "sqlite3/", None),
    ("Avro encode/decode", "fastavro/", None),
    ("Avro encode/decode", "schemas/codec.py", None),
    ("pydantic models", "pydantic", None),
    ("Ed25519 sign/verify", "broker/signing.py", None),
    ("Ed25519 sign/verify", "broker/keyring.py", None),
    ("X25519/AES-GCM sealing", "broker/sealed.py", None),
    ("cryptography (library wrappers)", "cryptography/", None),
    ("structlog logging", "structlog/", None),
    ("structlog logging", "logging/", None),
    ("tenacity retries", "tenacity/", None),
    ("aio-pika/aiormq/pamqp (AMQP)", "aio_pika/", None),
    ("aio-pika/aiormq/pamqp (AMQP)", "aiormq/", None),
    ("aio-pika/aiormq/pamqp (AMQP)", "pamqp/", None),
    ("record matching", "rapidfuzz", None),
    ("record matching", "adapters/", None),
    ("hub decisions (correlator)", "hub/correlator.py", None),
    ("hub service loop", "hub/service.py", None),
    ("consumer/publisher wrappers", "broker/consumer.py", None),
    ("consumer/publisher wrappers", "broker/publisher.py", None),
    ("asyncio event loop", "asyncio/", None),
)


@dataclass(frozen=True)
class ProfileSummary:
    process: str
    samples: int  # busy: running Python or C code, or blocked in a system call (fsync)
    idle: int  # waiting in epoll for work
    rate: int
    categories: list[tuple[str, int]]
    top_functions: list[tuple[str, int]]

    def share(self, samples: int) -> float:
        return 100.0 * samples / self.samples if self.samples else 0.0

    def as_dict(self, contacts: int) -> dict[str, object]:
        per_contact = 1000.0 / self.rate / contacts if contacts else 0.0
        return {
            "process": self.process,
            "samples": self.samples,
            "idle_samples": self.idle,
            "busy_ms_per_contact": round(self.samples * per_contact, 3),
            "categories": [
                {
                    "name": name,
                    "percent": round(self.share(n), 1),
                    "ms_per_contact": round(n * per_contact, 3),
                }
                for name, n in self.categories
            ],
            "top_functions": [
                {"function": name, "percent": round(self.share(n), 1)}
                for name, n in self.top_functions
            ],
        }

    def render(self, contacts: int, top: int = 12) -> str:
        per_contact = 1000.0 / self.rate / contacts if contacts else 0.0
        lines = [
            f"{self.process}: {self.samples} busy samples ({self.idle} idle), "
            f"{self.samples * per_contact:.2f} ms busy per contact"
        ]
        for name, n in self.categories:
            lines.append(f"  {self.share(n):5.1f}%  {n * per_contact:6.3f} ms/contact  {name}")
        lines.append("  top functions (self time):")
        for name, n in self.top_functions[:top]:
            lines.append(f"  {self.share(n):5.1f}%  {name}")
        return "\n".join(lines)


def _parse(frame: str) -> tuple[str, str]:
    found = _FRAME.match(frame)
    if found is None:
        return frame, ""
    return found["function"], found["file"]


def _matches(function: str, wanted: str | None) -> bool:
    # py-spy names methods by their class: "HubStore.transaction".
    return wanted is None or function == wanted or function.endswith("." + wanted)


def _idle(frames: list[tuple[str, str]]) -> bool:
    """Waiting in epoll for the next event: the process had nothing to do."""
    function, file = frames[-1]
    return file.endswith("selectors.py") and function.endswith("select")


def _category(frames: list[tuple[str, str]]) -> str:
    for function, file in reversed(frames):
        for name, fragment, wanted in CATEGORIES:
            if fragment in file and _matches(function, wanted):
                return name
    return "other"


def _short(function: str, file: str) -> str:
    for marker in ("site-packages/", "/work/", "lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{function} ({file})"


def summarise(path: Path, process: str, rate: int = 100) -> ProfileSummary:
    categories: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = idle = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [_parse(f) for f in stack.split(";")]
        if any(function == "_find_and_load" for function, _ in frames):
            continue  # start-up imports
        count = int(count_text)
        if _idle(frames):
            idle += count
            continue
        total += count
        categories[_category(frames)] += count
        leaves[_short(*frames[-1])] += count
    return ProfileSummary(
        process=process,
        samples=total,
        idle=idle,
        rate=rate,
        categories=categories.most_common(),
        top_functions=leaves.most_common(25),
    )
