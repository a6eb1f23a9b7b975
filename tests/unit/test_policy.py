"""BRAG deadlines, the working calendar and window configuration."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest

from hub.policy import BragPolicy, Window, WorkingCalendar
from schemas.enums import Brag

LONDON = ZoneInfo("Europe/London")
POLICY = BragPolicy()


def uk(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LONDON)


def local(at: datetime) -> datetime:
    return at.astimezone(LONDON)


# --- facts about the outside world the tests rely on ------------------------------------


def test_bank_holiday_facts_relied_on_match_the_holidays_library() -> None:
    england = holidays.country_holidays("GB", subdiv="ENG", years=[2026, 2027])
    for bank_holiday in (
        date(2026, 4, 3),  # Good Friday
        date(2026, 4, 6),  # Easter Monday
        date(2026, 5, 25),  # late May bank holiday
        date(2026, 12, 25),
        date(2026, 12, 28),  # Boxing Day observed, 26th being a Saturday
        date(2027, 1, 1),
    ):
        assert bank_holiday in england
    for ordinary_day in (date(2026, 4, 2), date(2026, 5, 26), date(2026, 12, 24)):
        assert ordinary_day not in england
    assert date(2026, 12, 26).weekday() == 5


def test_uk_clock_changes_relied_on_are_where_the_tz_database_puts_them() -> None:
    assert uk(2026, 3, 28, 12).utcoffset() == timedelta(0)
    assert uk(2026, 3, 30, 12).utcoffset() == timedelta(hours=1)
    assert uk(2026, 10, 24, 12).utcoffset() == timedelta(hours=1)
    assert uk(2026, 10, 26, 12).utcoffset() == timedelta(0)


# --- Red: clock hours ----------------------------------------------------------------


def test_red_deadline_counts_clock_hours_overnight() -> None:
    deadline = POLICY.deadline(uk(2026, 6, 9, 22, 30), Brag.RED)  # Tuesday night
    assert local(deadline) == uk(2026, 6, 10, 2, 30)


def test_red_deadline_counts_clock_hours_over_a_weekend() -> None:
    deadline = POLICY.deadline(uk(2026, 6, 13, 15), Brag.RED)  # Saturday afternoon
    assert local(deadline) == uk(2026, 6, 13, 19)


def test_red_deadline_is_four_elapsed_hours_across_the_spring_clock_change() -> None:
    received = uk(2026, 3, 28, 23)  # Saturday 23:00 GMT; clocks go forward at 01:00
    deadline = POLICY.deadline(received, Brag.RED)
    assert deadline - received == timedelta(hours=4)
    assert local(deadline).replace(tzinfo=None) == datetime(2026, 3, 29, 4, 0)


def test_red_deadline_ignores_bank_holidays() -> None:
    deadline = POLICY.deadline(uk(2026, 12, 25, 10), Brag.RED)
    assert local(deadline) == uk(2026, 12, 25, 14)


# --- Amber: one working day ------------------------------------------------------------


def test_amber_received_tuesday_morning_is_due_wednesday_same_time() -> None:
    deadline = POLICY.deadline(uk(2026, 6, 9, 10), Brag.AMBER)
    assert local(deadline) == uk(2026, 6, 10, 10)
    assert deadline == datetime(2026, 6, 10, 9, 0, tzinfo=UTC)  # 10:00 BST


def test_amber_received_friday_afternoon_is_due_monday_same_time() -> None:
    deadline = POLICY.deadline(uk(2026, 6, 12, 16), Brag.AMBER)
    assert local(deadline) == uk(2026, 6, 15, 16)


def test_amber_received_saturday_counts_from_monday_opening() -> None:
    deadline = POLICY.deadline(uk(2026, 6, 13, 11, 45), Brag.AMBER)
    assert local(deadline) == uk(2026, 6, 16, 9)


def test_amber_received_thursday_after_friday_closing_time_is_clamped_to_friday_close() -> None:
    deadline = POLICY.deadline(uk(2026, 6, 11, 17, 10), Brag.AMBER)
    assert local(deadline) == uk(2026, 6, 12, 17)


def test_amber_received_before_opening_counts_from_that_mornings_opening() -> None:
    deadline = POLICY.deadline(uk(2026, 6, 9, 7, 30), Brag.AMBER)
    assert local(deadline) == uk(2026, 6, 10, 9)


def test_amber_received_after_closing_counts_from_next_mornings_opening() -> None:
    deadline = POLICY.deadline(uk(2026, 6, 9, 17, 15), Brag.AMBER)  # closing instant
    assert local(deadline) == uk(2026, 6, 11, 9)


def test_amber_keeps_wall_clock_time_across_the_spring_clock_change() -> None:
    deadline = POLICY.deadline(uk(2026, 3, 27, 10), Brag.AMBER)  # Friday 10:00 GMT
    assert local(deadline) == uk(2026, 3, 30, 10)  # Monday 10:00 BST
    assert deadline == datetime(2026, 3, 30, 9, 0, tzinfo=UTC)


def test_amber_keeps_wall_clock_time_across_the_autumn_clock_change() -> None:
    deadline = POLICY.deadline(uk(2026, 10, 23, 16, 30), Brag.AMBER)  # Friday 16:30 BST
    assert local(deadline) == uk(2026, 10, 26, 16, 30)  # Monday 16:30 GMT
    assert deadline == datetime(2026, 10, 26, 16, 30, tzinfo=UTC)


def test_amber_received_christmas_eve_skips_christmas_weekend_and_boxing_day_observed() -> None:
    deadline = POLICY.deadline(uk(2026, 12, 24, 14), Brag.AMBER)
    assert local(deadline) == uk(2026, 12, 29, 14)


def test_amber_received_on_christmas_day_counts_from_the_first_opening_after() -> None:
    deadline = POLICY.deadline(uk(2026, 12, 25, 10), Brag.AMBER)
    assert local(deadline) == uk(2026, 12, 30, 9)


# --- Green and Blue: several working days ----------------------------------------------


def test_green_skips_good_friday_and_easter_monday() -> None:
    deadline = POLICY.deadline(uk(2026, 4, 2, 10), Brag.GREEN)  # Thursday before Easter
    assert local(deadline) == uk(2026, 4, 9, 10)


def test_green_skips_the_late_may_bank_holiday() -> None:
    deadline = POLICY.deadline(uk(2026, 5, 22, 11), Brag.GREEN)  # Friday before
    assert local(deadline) == uk(2026, 5, 28, 11)


def test_green_crosses_into_the_new_year_skipping_new_years_day() -> None:
    deadline = POLICY.deadline(uk(2026, 12, 29, 12), Brag.GREEN)
    assert local(deadline) == uk(2027, 1, 4, 12)


def test_blue_defaults_to_five_working_days() -> None:
    deadline = POLICY.deadline(uk(2026, 6, 9, 10), Brag.BLUE)
    assert local(deadline) == uk(2026, 6, 16, 10)


def test_deadline_accepts_any_aware_timezone_and_returns_utc() -> None:
    received = datetime(2026, 6, 9, 9, 0, tzinfo=UTC)  # 10:00 BST
    deadline = POLICY.deadline(received, Brag.AMBER)
    assert deadline.tzinfo is UTC
    assert deadline == datetime(2026, 6, 10, 9, 0, tzinfo=UTC)


def test_deadline_rejects_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        POLICY.deadline(datetime(2026, 6, 9, 10), Brag.AMBER)


# --- calendar --------------------------------------------------------------------------


def test_calendar_opening_hours_boundaries() -> None:
    calendar = WorkingCalendar()
    assert not calendar.is_open(uk(2026, 6, 11, 8, 59))
    assert calendar.is_open(uk(2026, 6, 11, 9))
    assert calendar.is_open(uk(2026, 6, 11, 17, 14))
    assert not calendar.is_open(uk(2026, 6, 11, 17, 15))
    assert calendar.is_open(uk(2026, 6, 12, 16, 59))  # Friday
    assert not calendar.is_open(uk(2026, 6, 12, 17))
    assert not calendar.is_open(uk(2026, 6, 13, 12))  # Saturday
    assert not calendar.is_open(uk(2026, 4, 6, 12))  # Easter Monday


def test_calendar_is_open_uses_uk_local_time_not_utc() -> None:
    calendar = WorkingCalendar()
    assert calendar.is_open(datetime(2026, 6, 11, 8, 30, tzinfo=UTC))  # 09:30 BST
    assert not calendar.is_open(datetime(2026, 12, 10, 8, 30, tzinfo=UTC))  # 08:30 GMT


def test_calendar_working_days_exclude_weekends_and_bank_holidays() -> None:
    calendar = WorkingCalendar()
    assert calendar.is_working_day(date(2026, 12, 24))
    assert not calendar.is_working_day(date(2026, 12, 25))
    assert not calendar.is_working_day(date(2026, 12, 26))
    assert not calendar.is_working_day(date(2026, 12, 27))
    assert not calendar.is_working_day(date(2026, 12, 28))
    assert calendar.is_working_day(date(2026, 12, 29))


def test_next_opening_is_the_first_opening_at_or_after_the_instant() -> None:
    calendar = WorkingCalendar()
    assert calendar.next_opening(uk(2026, 6, 9, 7)) == uk(2026, 6, 9, 9)
    assert calendar.next_opening(uk(2026, 6, 9, 9)) == uk(2026, 6, 9, 9)
    assert calendar.next_opening(uk(2026, 6, 9, 12)) == uk(2026, 6, 10, 9)
    assert calendar.next_opening(uk(2026, 6, 12, 18)) == uk(2026, 6, 15, 9)
    assert calendar.next_opening(uk(2026, 12, 24, 18)) == uk(2026, 12, 29, 9)


def test_add_zero_working_days_only_clamps_into_operating_time() -> None:
    calendar = WorkingCalendar()
    assert calendar.add_working_days(uk(2026, 6, 9, 12), 0) == uk(2026, 6, 9, 12)
    assert calendar.add_working_days(uk(2026, 6, 13, 12), 0) == uk(2026, 6, 15, 9)


def test_add_working_days_rejects_negative_counts_and_naive_datetimes() -> None:
    calendar = WorkingCalendar()
    with pytest.raises(ValueError):
        calendar.add_working_days(uk(2026, 6, 9, 12), -1)
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.add_working_days(datetime(2026, 6, 9, 12), 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.is_open(datetime(2026, 6, 9, 12))


def test_custom_calendar_hours_are_honoured() -> None:
    short_days = (*((time(10, 0), time(16, 0)),) * 5, None, None)
    policy = BragPolicy(calendar=WorkingCalendar(opening_hours=short_days))
    deadline = policy.deadline(uk(2026, 6, 9, 9), Brag.AMBER)
    assert local(deadline) == uk(2026, 6, 10, 10)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timezone": "Mars/Olympus_Mons"},
        {"subdivision": "XYZ"},
        {"opening_hours": ((time(9), time(17)),) * 6},
        {"opening_hours": ((time(17), time(9)),) * 7},
        {"opening_hours": (None,) * 7},
    ],
)
def test_calendar_rejects_invalid_configuration(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        WorkingCalendar(**kwargs)  # type: ignore[arg-type]


# --- windows ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4h", Window("clock", 4 * 3600)),
        ("90m", Window("clock", 90 * 60)),
        ("30s", Window("clock", 30)),
        ("2.5s", Window("clock", 2.5)),
        ("0.1h", Window("clock", 360)),
        ("1wd", Window("working_days", 1)),
        ("3wd", Window("working_days", 3)),
        (" 5WD ", Window("working_days", 5)),
    ],
)
def test_window_parses_clock_and_working_day_notation(text: str, expected: Window) -> None:
    assert Window.parse(text) == expected


@pytest.mark.parametrize("text", ["4h", "90m", "30s", "2.5s", "1wd", "3wd", "36h", "1.5s"])
def test_window_str_gives_back_the_notation(text: str) -> None:
    assert str(Window.parse(text)) == text


@pytest.mark.parametrize("text", ["1.5h", "0.1h", "120m", "3600s"])
def test_window_str_round_trips_through_parse(text: str) -> None:
    window = Window.parse(text)
    assert Window.parse(str(window)) == window


@pytest.mark.parametrize(
    "text", ["", "4", "h", "4d", "4 hours", "-4h", "0h", "0wd", "1.5wd", "4h30m", "1e3s", "nan"]
)
def test_window_parse_rejects_bad_notation_with_a_clear_message(text: str) -> None:
    with pytest.raises(ValueError, match="invalid window") as excinfo:
        Window.parse(text)
    assert "'3wd'" in str(excinfo.value)


def test_window_constructor_rejects_fractional_working_days_and_non_positive_amounts() -> None:
    with pytest.raises(ValueError):
        Window("working_days", 1.5)
    with pytest.raises(ValueError):
        Window("clock", 0)
    with pytest.raises(ValueError):
        Window("fortnights", 1)  # type: ignore[arg-type]


# --- configuration ---------------------------------------------------------------------


def test_default_policy_windows_match_the_domain_brief() -> None:
    assert [str(POLICY.window(brag)) for brag in (Brag.RED, Brag.AMBER, Brag.GREEN, Brag.BLUE)] == [
        "4h",
        "1wd",
        "3wd",
        "5wd",
    ]


def test_from_env_overrides_only_the_variables_that_are_set() -> None:
    policy = BragPolicy.from_env({"MASH_BRAG_RED": "2h", "MASH_BRAG_BLUE": "10wd"})
    assert policy.red == Window("clock", 7200)
    assert policy.blue == Window("working_days", 10)
    assert policy.amber == POLICY.amber
    assert policy.green == POLICY.green


def test_from_env_with_nothing_set_gives_the_defaults() -> None:
    assert BragPolicy.from_env({}) == POLICY
    assert BragPolicy.from_env({"MASH_BRAG_GREEN": ""}) == POLICY


def test_from_env_reads_the_process_environment_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MASH_BRAG_AMBER", "2wd")
    assert BragPolicy.from_env().amber == Window("working_days", 2)


def test_from_env_error_names_the_bad_variable() -> None:
    with pytest.raises(ValueError, match="MASH_BRAG_GREEN") as excinfo:
        BragPolicy.from_env({"MASH_BRAG_RED": "4h", "MASH_BRAG_GREEN": "three days"})
    assert "three days" in str(excinfo.value)


def test_configured_clock_window_applies_to_a_working_day_rating() -> None:
    policy = BragPolicy.from_env({"MASH_BRAG_AMBER": "90m"})
    deadline = policy.deadline(uk(2026, 6, 13, 23), Brag.AMBER)
    assert local(deadline) == uk(2026, 6, 14, 0, 30)


def test_configured_working_day_window_applies_to_red() -> None:
    policy = BragPolicy(red=Window.parse("1wd"))
    assert local(policy.deadline(uk(2026, 6, 9, 10), Brag.RED)) == uk(2026, 6, 10, 10)


# --- lanes and reminders ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("brag", "lane"),
    [
        (Brag.RED, "urgent"),
        (Brag.AMBER, "routine"),
        (Brag.GREEN, "routine"),
        (Brag.BLUE, "routine"),
    ],
)
def test_only_red_goes_in_the_urgent_lane(brag: Brag, lane: str) -> None:
    assert POLICY.lane(brag) == lane


def test_red_reminders_fall_at_half_and_three_quarters_of_the_window() -> None:
    received = uk(2026, 6, 9, 10)
    assert POLICY.reminder_times(received, Brag.RED) == [
        datetime(2026, 6, 9, 11, 0, tzinfo=UTC),  # 12:00 BST
        datetime(2026, 6, 9, 12, 0, tzinfo=UTC),  # 13:00 BST
    ]


def test_a_friday_1655_amber_contact_is_reminded_inside_mondays_hours() -> None:
    received = uk(2026, 11, 20, 16, 55)  # Friday; Amber due Monday 16:55
    # Eight working hours: five minutes on Friday, 7h55 on Monday.
    reminders = POLICY.reminder_times(received, Brag.AMBER)
    assert [local(r) for r in reminders] == [uk(2026, 11, 23, 12, 55), uk(2026, 11, 23, 14, 55)]


def test_working_day_reminders_skip_bank_holidays_and_keep_local_time_across_bst() -> None:
    # Friday 23 October 2026, 16:00 BST; clocks go back on Sunday 25th; Blue is five working
    # days. An hour on Friday, four days of 8h15, then 7h on Friday: half is 20h30 of work.
    reminders = POLICY.reminder_times(uk(2026, 10, 23, 16), Brag.BLUE, fractions=(0.5,))
    assert [local(r) for r in reminders] == [uk(2026, 10, 28, 12)]  # Wednesday 12:00 GMT
    # Amber on the Friday before the August bank holiday: reminded on Tuesday.
    reminders = POLICY.reminder_times(uk(2026, 8, 28, 16), Brag.AMBER, fractions=(0.5,))
    assert [local(r) for r in reminders] == [uk(2026, 9, 1, 12)]


def test_every_working_day_reminder_falls_inside_operating_hours_and_before_its_deadline() -> None:
    received = uk(2026, 10, 19, 0, 7)  # a fortnight across a BST change, every 53 minutes
    while received < uk(2026, 11, 2):
        for brag in (Brag.AMBER, Brag.GREEN, Brag.BLUE):
            deadline = POLICY.deadline(received, brag)
            times = POLICY.reminder_times(received, brag)
            assert all(POLICY.calendar.is_open(t) for t in times), (received, brag, times)
            assert all(received < t < deadline for t in times)
            assert times == sorted(times)
        received += timedelta(minutes=53)


def test_red_reminders_may_fall_at_any_hour() -> None:
    reminders = POLICY.reminder_times(uk(2026, 11, 21, 1), Brag.RED)  # Saturday 01:00
    assert [local(r) for r in reminders] == [uk(2026, 11, 21, 3), uk(2026, 11, 21, 4)]


def test_working_time_counts_opening_hours_only() -> None:
    calendar = POLICY.calendar
    assert calendar.working_time(uk(2026, 11, 20, 16, 55), uk(2026, 11, 23, 9, 30)) == timedelta(
        minutes=35
    )
    assert calendar.add_working_time(uk(2026, 11, 20, 16, 55), timedelta(minutes=5)) == uk(
        2026, 11, 23, 9
    )  # ending exactly at closing lands at the next opening


def test_reminders_are_utc_and_in_the_order_of_the_fractions_given() -> None:
    reminders = POLICY.reminder_times(uk(2026, 6, 9, 10), Brag.RED, fractions=(0.9, 0.25))
    assert [r.tzinfo for r in reminders] == [UTC, UTC]
    assert reminders[0] > reminders[1]


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5, 1.5])
def test_reminder_fractions_outside_the_window_are_rejected(fraction: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        POLICY.reminder_times(uk(2026, 6, 9, 10), Brag.RED, fractions=(fraction,))


def test_reminder_times_reject_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        POLICY.reminder_times(datetime(2026, 6, 9, 10), Brag.RED)
