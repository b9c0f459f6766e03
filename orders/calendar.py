"""The trading calendar: a TradingSession row for a date overrides the default daily hours from settings."""
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.utils import timezone

from .models import TradingSession


def _default_hours() -> tuple[time, time]:
    opens = time.fromisoformat(getattr(settings, "BROKERX_SESSION_OPENS", "00:00"))
    closes = time.fromisoformat(getattr(settings, "BROKERX_SESSION_CLOSES", "23:59:59"))
    return opens, closes


def session_for(day: date) -> tuple[datetime, datetime] | None:
    """(opens_at, closes_at) of the session on `day`, or None for a holiday."""
    row = TradingSession.objects.filter(date=day).first()
    if row is not None:
        return (row.opens_at, row.closes_at) if row.is_open else None
    opens, closes = _default_hours()
    tz = timezone.get_current_timezone()
    return datetime.combine(day, opens, tz), datetime.combine(day, closes, tz)


def is_market_open(now: datetime | None = None) -> bool:
    now = now or timezone.now()
    session = session_for(now.date())
    return session is not None and session[0] <= now < session[1]


def last_session_close(now: datetime | None = None) -> datetime | None:
    """The most recent session close at or before `now` (looking back a week)."""
    now = now or timezone.now()
    for back in range(8):
        session = session_for(now.date() - timedelta(days=back))
        if session is not None and session[1] <= now:
            return session[1]
    return None
