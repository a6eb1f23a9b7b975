"""BRAG response windows and the MASH working calendar: the one place both are defined.

A MASH manager rates every contact Blue, Red, Amber or Green (BRAG), and the rating sets the
deadline by which each partner agency must answer. Defaults, each overridable through the
environment (see :meth:`BragPolicy.from_env`) in :class:`Window` notation:

* Red   -- ``4h``: four *clock* hours, counted day or night, weekends and holidays included.
* Amber -- ``1wd``: one working day.
* Green -- ``3wd``: three working days.
* Blue  -- ``5wd``: five working days.

Clock windows are written ``<number>h``, ``<number>m`` or ``<number>s`` (fractions allowed,
e.g. ``90m`` or ``2.5s``); working-day windows are ``<whole number>wd``.

Working calendar (:class:`WorkingCalendar`), in UK local time (``Europe/London``, so BST and
GMT are both handled): open Monday-Thursday 09:00-17:15 and Friday 09:00-17:00; closed on
Saturday, Sunday and England bank holidays as published by the ``holidays`` library.
An instant is "open" when ``opening <= local time < closing``.

Working-day deadlines are computed in two steps:

1. **Clamp** the arrival into operating time. Arriving before opening on an open day counts as
   arriving at that day's opening; arriving at or after closing, or on a closed day, counts as
   arriving at the next open day's opening. Arrivals during opening hours are left alone.
2. **Step** forward N open days. The deadline is the clamped local time of day on the Nth next
   open day, clamped to that day's opening hours -- in practice, to its closing time.

Examples: Tuesday 10:00 + 1wd -> Wednesday 10:00; Friday 16:00 + 1wd -> Monday 16:00;
Saturday (any time) + 1wd -> Monday 09:00 + 1wd -> Tuesday 09:00; Thursday 17:10 + 1wd ->
Friday 17:00, because Friday closes earlier than Thursday.

The day stepping is done on local calendar dates, never by adding 24-hour spans, so a deadline
keeps its wall-clock time across a BST/GMT change. Clock windows, on the other hand, are added
in UTC, so a four-hour Red window is always four elapsed hours even across a change.
All returned deadlines are timezone-aware UTC datetimes.

Reminders (:meth:`BragPolicy.reminder_times`) fall at fixed fractions of the time an agency
has to answer, by default half and three quarters (``MASH_REMINDER_FRACTIONS``). For a
working-day window that is the *working* time from receipt to deadline, so every reminder
falls inside operating hours (a Friday 16:55 Amber contact, due Monday 16:55, is reminded on
Monday at 12:55 and 14:55, never at the weekend); for a clock window (Red) it is the
elapsed time, and a reminder may fall at any hour, as the Red deadline itself does.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from broker.topology import Lane, lane_for
from schemas.enums import Brag

__all__ = [
    "ENV_VARS",
    "REMINDER_ENV_VAR",
    "BragPolicy",
    "Lane",
    "Window",
    "WindowKind",
    "WorkingCalendar",
]

WindowKind = Literal["clock", "working_days"]

_SECONDS_PER_UNIT: Mapping[str, int] = {"h": 3600, "m": 60, "s": 1}
_WINDOW_RE = re.compile(r"^(?P<number>\d+(?:\.\d+)?)(?P<unit>h|m|s|wd)$")
_WINDOW_SYNTAX = (
    "expected a positive number of clock hours, minutes or seconds (e.g. '4h', '90m', '2.5s') "
    "or a positive whole number of working days (e.g. '1wd', '3wd')"
)

# Environment variable that overrides each rating's window.
ENV_VARS: Mapping[Brag, str] = {
    Brag.RED: "MASH_BRAG_RED",
    Brag.AMBER: "MASH_BRAG_AMBER",
    Brag.GREEN: "MASH_BRAG_GREEN",
    Brag.BLUE: "MASH_BRAG_BLUE",
}
REMINDER_ENV_VAR = "MASH_REMINDER_FRACTIONS"


@dataclass(frozen=True)
class Window:
    """A response window: ``amount`` seconds of clock time, or ``amount`` working days."""

    kind: WindowKind
    amount: float | int

    def __post_init__(self) -> None:
        if self.kind not in ("clock", "working_days"):
            raise ValueError(f"window kind must be 'clock' or 'working_days', not {self.kind!r}")
        # bool is an int subclass; True working days is a bug, not a window.
        if isinstance(self.amount, bool) or not isinstance(self.amount, int | float):
            raise ValueError(f"window amount must be a number, not {self.amount!r}")
        if not math.isfinite(self.amount) or self.amount <= 0:
            raise ValueError(f"window amount must be positive and finite, not {self.amount!r}")
        if self.kind == "working_days" and not isinstance(self.amount, int):
            raise ValueError(f"working days must be a whole number, not {self.amount!r}")
        if isinstance(self.amount, float) and self.amount.is_integer():
            # Normalise so 14400.0 and 14400 print the same and str() stays compact.
            object.__setattr__(self, "amount", int(self.amount))

    @classmethod
    def parse(cls, text: str) -> Window:
        """Parse ``4h``, ``90m``, ``30s``, ``2.5s`` (clock) or ``3wd`` (working days)."""
        match = _WINDOW_RE.match(text.strip().lower())
        if match is None:
            raise ValueError(f"invalid window {text!r}: {_WINDOW_SYNTAX}")
        number, unit = Decimal(match["number"]), match["unit"]
        if number <= 0 or (unit == "wd" and number != number.to_integral_value()):
            raise ValueError(f"invalid window {text!r}: {_WINDOW_SYNTAX}")
        if unit == "wd":
            return cls("working_days", int(number))
        # Decimal keeps "0.1h" at exactly 360 s instead of 360.00000000000006.
        seconds = number * _SECONDS_PER_UNIT[unit]
        if seconds == seconds.to_integral_value():
            return cls("clock", int(seconds))
        return cls("clock", float(seconds))

    @property
    def duration(self) -> timedelta:
        """The elapsed time of a clock window; working-day windows have no fixed length."""
        if self.kind != "clock":
            raise ValueError(f"{self} is counted in working days and has no fixed duration")
        return timedelta(seconds=self.amount)

    def __str__(self) -> str:
        if self.kind == "working_days":
            return f"{self.amount}wd"
        if isinstance(self.amount, int):
            for unit in ("h", "m"):
                if self.amount % _SECONDS_PER_UNIT[unit] == 0:
                    return f"{self.amount // _SECONDS_PER_UNIT[unit]}{unit}"
            return f"{self.amount}s"
        # repr() is the shortest text that round-trips; Decimal avoids exponent notation.
        return f"{format(Decimal(repr(self.amount)), 'f')}s"


_DEFAULT_OPENING_HOURS: tuple[tuple[time, time] | None, ...] = (
    (time(9, 0), time(17, 15)),  # Monday
    (time(9, 0), time(17, 15)),  # Tuesday
    (time(9, 0), time(17, 15)),  # Wednesday
    (time(9, 0), time(17, 15)),  # Thursday
    (time(9, 0), time(17, 0)),  # Friday
    None,  # Saturday
    None,  # Sunday
)


@cache
def _bank_holidays(subdivision: str, year: int) -> frozenset[date]:
    # Built lazily per year because deadlines only ever touch a year or two, and cached
    # because the holidays library recomputes its rules on every construction.
    return frozenset(holidays.country_holidays("GB", subdiv=subdivision, years=year).keys())


def _require_aware(at: datetime, name: str = "at") -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {at.isoformat()}")


@dataclass(frozen=True)
class WorkingCalendar:
    """When the MASH is open: weekday opening hours in local time, minus bank holidays.

    ``opening_hours`` has seven entries, Monday first; each is ``(opening, closing)`` as naive
    local times, or ``None`` for a day the hub never opens.
    """

    timezone: str = "Europe/London"
    opening_hours: tuple[tuple[time, time] | None, ...] = _DEFAULT_OPENING_HOURS
    subdivision: str = "ENG"

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {self.timezone!r}") from exc
        if len(self.opening_hours) != 7:
            raise ValueError("opening_hours needs exactly seven entries, Monday first")
        for hours in self.opening_hours:
            if hours is None:
                continue
            opening, closing = hours
            if opening.tzinfo is not None or closing.tzinfo is not None:
                raise ValueError("opening hours are local times and must be naive")
            if not opening < closing:
                raise ValueError(f"opening {opening} must be before closing {closing}")
        # Without an open weekday, stepping to the next working day would never end.
        if all(hours is None for hours in self.opening_hours):
            raise ValueError("opening_hours must open on at least one weekday")
        try:
            holidays.country_holidays("GB", subdiv=self.subdivision)
        except NotImplementedError as exc:
            raise ValueError(f"unknown bank-holiday subdivision {self.subdivision!r}") from exc

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_working_day(self, d: date) -> bool:
        """True if the hub opens at all on local date ``d``."""
        if self.opening_hours[d.weekday()] is None:
            return False
        return d not in _bank_holidays(self.subdivision, d.year)

    def is_open(self, at: datetime) -> bool:
        """True if ``at`` (aware) falls within opening hours on a working day."""
        _require_aware(at)
        local = at.astimezone(self.zone)
        hours = self._hours(local.date())
        return hours is not None and hours[0] <= local.time() < hours[1]

    def next_opening(self, at: datetime) -> datetime:
        """The first opening instant at or after ``at``, in local time.

        While the hub is open this is the *next* day's opening, not ``at`` itself.
        """
        _require_aware(at)
        local = at.astimezone(self.zone)
        day = local.date()
        hours = self._hours(day)
        if hours is not None and local.time() <= hours[0]:
            return self._at(day, hours[0])
        day = self._next_working_day(day)
        return self._at(day, self._open_hours(day)[0])

    def add_working_days(self, at: datetime, n: int) -> datetime:
        """Clamp ``at`` into operating time, then move ``n`` working days on (local time).

        See the module docstring for the exact rule; ``n == 0`` only clamps.
        """
        _require_aware(at)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"working days must be a non-negative whole number, not {n!r}")
        start = at.astimezone(self.zone) if self.is_open(at) else self.next_opening(at)
        day = start.date()
        for _ in range(n):
            day = self._next_working_day(day)
        opening, closing = self._open_hours(day)
        return self._at(day, min(max(start.time(), opening), closing))

    def working_time(self, start: datetime, end: datetime) -> timedelta:
        """How much of the span from ``start`` to ``end`` (aware) falls in opening hours."""
        _require_aware(start, "start")
        _require_aware(end, "end")
        total = timedelta()
        for opening, closing in self._open_spans(start):
            if opening >= end:
                break
            total += min(closing, end) - opening
        return total

    def add_working_time(self, start: datetime, amount: timedelta) -> datetime:
        """The instant ``amount`` of opening hours after ``start`` (aware), in UTC.

        The result is always inside opening hours: an amount that ends exactly at a closing
        time lands at the next opening instead, when someone is there to read it.
        """
        _require_aware(start, "start")
        if amount < timedelta():
            raise ValueError(f"working time must not be negative, not {amount}")
        for opening, closing in self._open_spans(start):
            if amount < closing - opening:
                return opening + amount
            amount -= closing - opening
        raise AssertionError("unreachable: open spans never end")

    def _open_spans(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        # Each day's opening hours from ``start`` on, in UTC: aware datetimes that share a
        # zone compare and subtract by wall time, which is wrong across a BST/GMT change.
        begin = start.astimezone(UTC)
        day = start.astimezone(self.zone).date()
        while True:
            hours = self._hours(day)
            if hours is not None:
                opening = self._at(day, hours[0]).astimezone(UTC)
                closing = self._at(day, hours[1]).astimezone(UTC)
                if begin < closing:
                    yield max(opening, begin), closing
            day += timedelta(days=1)

    def _hours(self, d: date) -> tuple[time, time] | None:
        return self.opening_hours[d.weekday()] if self.is_working_day(d) else None

    def _open_hours(self, d: date) -> tuple[time, time]:
        hours = self._hours(d)
        if hours is None:
            raise AssertionError(f"{d} is not a working day")
        return hours

    def _next_working_day(self, d: date) -> date:
        d += timedelta(days=1)
        while not self.is_working_day(d):
            d += timedelta(days=1)
        return d

    def _at(self, d: date, t: time) -> datetime:
        # combine() with the zone picks the right BST/GMT offset for that date.
        return datetime.combine(d, t, tzinfo=self.zone)


@dataclass(frozen=True)
class BragPolicy:
    """The response window for each BRAG rating, and the calendar working days are counted in."""

    red: Window = Window("clock", 4 * 3600)
    amber: Window = Window("working_days", 1)
    green: Window = Window("working_days", 3)
    blue: Window = Window("working_days", 5)
    calendar: WorkingCalendar = field(default_factory=WorkingCalendar)
    # When agencies still outstanding are reminded, as fractions of the span from receipt to
    # deadline (MASH_REMINDER_FRACTIONS, e.g. "0.5,0.75"; "none" for no reminders).
    reminder_fractions: tuple[float, ...] = (0.5, 0.75)

    def __post_init__(self) -> None:
        for fraction in self.reminder_fractions:
            if not 0 < fraction < 1:
                raise ValueError(f"reminder fractions must be between 0 and 1, not {fraction!r}")

    def window(self, brag: Brag) -> Window:
        """The configured window for ``brag``."""
        windows = {
            Brag.RED: self.red,
            Brag.AMBER: self.amber,
            Brag.GREEN: self.green,
            Brag.BLUE: self.blue,
        }
        return windows[Brag(brag)]

    def deadline(self, received_at: datetime, brag: Brag) -> datetime:
        """When agencies must have answered a contact received at ``received_at`` (aware)."""
        _require_aware(received_at, "received_at")
        window = self.window(brag)
        if window.kind == "clock":
            # UTC arithmetic so a clock change never stretches or shrinks the window.
            return received_at.astimezone(UTC) + window.duration
        assert isinstance(window.amount, int)  # Window guarantees whole working days.
        return self.calendar.add_working_days(received_at, window.amount).astimezone(UTC)

    def lane(self, brag: Brag) -> Lane:
        """Red contacts jump the queue; everything else is routine."""
        return lane_for(brag)

    def reminder_times(
        self,
        received_at: datetime,
        brag: Brag,
        fractions: Sequence[float] | None = None,
    ) -> list[datetime]:
        """UTC instants at each fraction of the time from receipt to deadline: working time
        for a working-day window (so inside operating hours), elapsed time for a clock one.

        Returned in the order of ``fractions`` (by default the policy's own); each fraction
        must lie strictly between 0 and 1.
        """
        _require_aware(received_at, "received_at")
        if fractions is None:
            fractions = self.reminder_fractions
        for fraction in fractions:
            if not 0 < fraction < 1:
                raise ValueError(f"reminder fractions must be between 0 and 1, not {fraction!r}")
        start = received_at.astimezone(UTC)
        deadline = self.deadline(received_at, brag)
        if self.window(brag).kind == "clock":
            span = deadline - start
            return [start + span * fraction for fraction in fractions]
        working = self.calendar.working_time(start, deadline)
        return [self.calendar.add_working_time(start, working * f) for f in fractions]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BragPolicy:
        """Build a policy from ``MASH_BRAG_RED`` etc.; unset or blank variables keep defaults."""
        env = os.environ if environ is None else environ
        defaults = cls()
        windows: dict[Brag, Window] = {}
        for brag, variable in ENV_VARS.items():
            raw = env.get(variable, "")
            # Compose files often export a variable as empty to mean "not set".
            if not raw.strip():
                windows[brag] = defaults.window(brag)
                continue
            try:
                windows[brag] = Window.parse(raw)
            except ValueError as exc:
                raise ValueError(f"{variable}: {exc}") from exc
        return cls(
            red=windows[Brag.RED],
            amber=windows[Brag.AMBER],
            green=windows[Brag.GREEN],
            blue=windows[Brag.BLUE],
            reminder_fractions=_parse_fractions(env.get(REMINDER_ENV_VAR, ""), defaults),
        )


def _parse_fractions(raw: str, defaults: BragPolicy) -> tuple[float, ...]:
    text = raw.strip().lower()
    if not text:
        return defaults.reminder_fractions
    if text in ("none", "off"):
        return ()
    try:
        fractions = tuple(sorted(float(part) for part in text.split(",") if part.strip()))
    except ValueError:
        raise ValueError(
            f"{REMINDER_ENV_VAR}: expected fractions of the window such as '0.5,0.75', not {raw!r}"
        ) from None
    for fraction in fractions:
        if not 0 < fraction < 1:
            raise ValueError(f"{REMINDER_ENV_VAR}: {fraction:g} is not between 0 and 1")
    return fractions
