"""How long an exchange may last: from three working days up to one month (domain.md).

One definition for every service, so an exchange that the applications service accepts on
submission is not found too long by assessment's eligibility rule. Working days are counted
in the host country by the applications service (it knows the public holidays); the month is
a calendar month from the first day, inclusive of that day.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta

MIN_WORKING_DAYS = 3


def last_day_within_one_month(start: date) -> date:
    """The latest end date of an exchange starting on `start`: the day before the same day of
    the next month (10 March → 9 April), or before its last day when that month is shorter."""
    year, month = (start.year, start.month + 1) if start.month < 12 else (start.year + 1, 1)
    day = min(start.day, calendar.monthrange(year, month)[1])
    return date(year, month, day) - timedelta(days=1)
