"""What a dependency fault is: Postgres, Redis or the broker unreachable or failing for a moment, not a bug.

Such a fault answers 503 with Retry-After (brokerx/error_responses.py) and makes a Celery task run again
(brokerx.celery.BrokerXTask); anything else is a bug and answers 500. Imports exception classes only: the Celery
app imports this module before Django is set up.
"""
import django.db
import psycopg
import redis.exceptions
from django_redis.exceptions import ConnectionInterrupted
from kombu.exceptions import OperationalError as BrokerOperationalError

# Postgres: connection lost or refused, pool exhausted (PoolTimeout), deadlock or serialization failure (all
# OperationalError); Django wraps psycopg's, raw psycopg use raises them as they are.
DATABASE_FAULTS = (django.db.OperationalError, django.db.InterfaceError, psycopg.OperationalError,
                   psycopg.InterfaceError)
# Redis (cache, rate limits, market data): unreachable, too slow, or skipped by the open circuit (CircuitOpen is a
# ConnectionError).
REDIS_FAULTS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, ConnectionInterrupted)
BROKER_FAULTS = (BrokerOperationalError,)

# Seconds a client is asked to wait: a pooled connection is replaced, or the Redis circuit probes again, by then.
RETRY_AFTER_SECONDS = {"database": 2, "redis": 2, "broker": 2}


def dependency_fault(exc: BaseException) -> str | None:
    """'database', 'redis' or 'broker' when `exc` (or an exception it was raised from) is a dependency fault."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, DATABASE_FAULTS):
            return "database"
        if isinstance(exc, REDIS_FAULTS):
            return "redis"
        if isinstance(exc, BROKER_FAULTS):
            return "broker"
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None
