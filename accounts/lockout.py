"""Sign-in lockout: failed passwords and codes counted in Redis per account and per client IP."""
import hashlib

from django.conf import settings

from brokerx import ratelimit

from .errors import LoginLockedOut


def _account_key(email: str) -> str:
    # Hashed so the Redis keyspace holds no e-mail addresses; counted for unknown addresses too (no enumeration).
    return "login-fail:acct:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:40]


def _ip_key(ip: str | None) -> str:
    return f"login-fail:ip:{ip or 'unknown'}"


def check_not_locked_out(*, email: str, ip: str | None) -> None:
    conf = settings.LOGIN_LOCKOUT
    for key, limit in ((_account_key(email), conf["ACCOUNT_FAILURES"]), (_ip_key(ip), conf["IP_FAILURES"])):
        count, ttl = ratelimit.peek(key)
        if count >= limit:
            raise LoginLockedOut(retry_after=max(1, ttl))


def record_failure(*, email: str, ip: str | None) -> None:
    conf = settings.LOGIN_LOCKOUT
    window = conf["WINDOW_SECONDS"]
    ratelimit.hit(_account_key(email), ratelimit.Rate(conf["ACCOUNT_FAILURES"], window))
    ratelimit.hit(_ip_key(ip), ratelimit.Rate(conf["IP_FAILURES"], window))


def clear_account(*, email: str) -> None:
    """A completed sign-in forgets the account's failures (the IP's stay: they may belong to someone else)."""
    ratelimit.reset(_account_key(email))
