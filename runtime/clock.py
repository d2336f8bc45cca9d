"""The suite's clock: dates are China's (Asia/Shanghai). Config ``TODAY`` (an ISO date,
for tests, demos and replays) fixes the date; nameko may hand it over as a date object
(it parses environment values as YAML) or as a string."""
import datetime as dt

try:
    from zoneinfo import ZoneInfo
    CHINA = ZoneInfo("Asia/Shanghai")
except Exception:  # pragma: no cover - no tz database: China has no DST
    CHINA = dt.timezone(dt.timedelta(hours=8))


def fixed_today():
    from nameko import config
    fixed = config.get("TODAY")
    if not fixed:
        return None
    return fixed if isinstance(fixed, dt.date) else dt.date.fromisoformat(str(fixed).strip('"'))


def now_china():
    """Now in China; with ``TODAY`` set, that date at the current time of day."""
    now = dt.datetime.now(CHINA)
    fixed = fixed_today()
    return dt.datetime.combine(fixed, now.timetz()) if fixed else now


def today():
    return fixed_today() or dt.datetime.now(CHINA).date()
