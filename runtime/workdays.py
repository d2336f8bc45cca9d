"""Chinese working days (工作日), including make-up workdays (调休上班).

Counting rule (POLICY.md, "where the seeds are unclear"): the event day is not
counted; the deadline is the N-th working day after it. ``chinese-calendar`` knows
the State Council's published holiday arrangements; for a year it does not know yet,
we fall back to Monday–Friday and say so (``estimated``), rather than fail.
"""
import calendar
import datetime as dt
import functools

try:
    import chinese_calendar
except ImportError:  # pragma: no cover - it is a pinned dependency
    chinese_calendar = None


@functools.lru_cache(maxsize=4096)
def is_workday(day):
    """(is it a working day, is the answer estimated). Cached: a due date counts up to
    tens of days, for every opinion requested, and the calendar never changes while a
    process runs (a new year's arrangement comes with a new ``chinese-calendar`` release)."""
    if chinese_calendar is not None:
        try:
            return chinese_calendar.is_workday(day), False
        except NotImplementedError:
            pass
    return day.weekday() < 5, True


def add_workdays(start, n):
    """The n-th working day after ``start`` (start itself is not counted)."""
    if n < 0:
        raise ValueError("n must be >= 0")
    day = start
    counted = 0
    estimated = False
    while counted < n:
        day += dt.timedelta(days=1)
        work, est = is_workday(day)
        estimated = estimated or est
        if work:
            counted += 1
    return day, estimated


def add_months(start, n):
    """Add calendar months, keeping the day number (clamped to the month's end)."""
    month_index = start.month - 1 + n
    year = start.year + month_index // 12
    month = month_index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return dt.date(year, month, day)


def workdays_between(start, end):
    """Working days after ``start`` up to and including ``end``."""
    count = 0
    day = start
    while day < end:
        day += dt.timedelta(days=1)
        if is_workday(day)[0]:
            count += 1
    return count
