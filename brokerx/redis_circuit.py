"""A circuit breaker in front of Redis: once Redis fails a few times in a row, calls fail at once for a while.

Redis holds no record (ADR 009): every use of it has a fallback or a retry. What a dead or frozen Redis must not
cost is a socket timeout on every request. `GuardedConnection`, the redis-py connection class of the cache's pool
(and so of `get_redis_connection`) and of the push client, asks the process's breaker before it connects or sends:

- closed: calls go through; `REDIS_CIRCUIT_FAILURES` consecutive connection failures or timeouts open it;
- open: every call raises `CircuitOpen` (a redis `ConnectionError`, so existing handlers treat it as Redis being
  down) without touching the network, for `REDIS_CIRCUIT_RESET_SECONDS`;
- then one call goes through as a probe (the others still fail fast): its success closes the circuit, its
  failure opens it again.

The check is two attribute reads and a clock read, in process: no lock, no I/O, unless the state changes.
The state is exported as `redis_circuit_state` (0 closed, 1 half-open, 2 open; the worst of the live processes).
"""
import logging
import threading
import time

from django.conf import settings
from prometheus_client import Counter, Gauge
from redis import exceptions as redis_errors
from redis.connection import Connection, ConnectionPool

logger = logging.getLogger(__name__)

CLOSED, HALF_OPEN, OPEN = 0, 1, 2
_STATE_NAMES = {CLOSED: "closed", HALF_OPEN: "half-open", OPEN: "open"}

circuit_state = Gauge("redis_circuit_state", "Redis circuit breaker: 0 closed, 1 half-open, 2 open",
                      ["circuit"], multiprocess_mode="livemax")
circuit_opened = Counter("redis_circuit_opened_total", "Times the Redis circuit breaker opened", ["circuit"])
circuit_rejected = Counter("redis_circuit_rejected_total", "Redis calls refused at once by an open circuit",
                           ["circuit"])


class CircuitOpen(redis_errors.ConnectionError):
    """Redis is considered down: the call was not attempted."""


class CircuitBreaker:
    def __init__(self, name: str, *, failures: int, reset_seconds: float):
        self.name = name
        self.failure_threshold = failures
        self.reset_seconds = reset_seconds
        self.state = CLOSED
        self.failures = 0
        self.retry_at = 0.0  # open: when the next probe may go through
        self.probe_thread = 0  # half-open: the thread whose call is the probe
        self._lock = threading.Lock()
        circuit_state.labels(name).set(CLOSED)

    def allow(self) -> bool:
        """Whether a call may go to Redis now. Cheap: the common case reads one attribute."""
        if self.state == CLOSED:
            return True
        if self.state == HALF_OPEN and self.probe_thread == threading.get_ident():
            return True  # the probe's own steps (connect, then send)
        now = time.monotonic()
        if now < self.retry_at:
            circuit_rejected.labels(self.name).inc()
            return False
        with self._lock:
            if now < self.retry_at:  # another thread took the probe
                circuit_rejected.labels(self.name).inc()
                return False
            self.retry_at = now + self.reset_seconds  # the others wait for this probe's outcome
            self.probe_thread = threading.get_ident()
            self._set(HALF_OPEN)
        return True

    def success(self) -> None:
        if self.failures or self.state != CLOSED:
            with self._lock:
                self.failures = 0
                if self.state != CLOSED:
                    self._set(CLOSED)
                    logger.warning("redis circuit closed", extra={"circuit": self.name})

    def failure(self) -> None:
        with self._lock:
            self.failures += 1
            if self.state == HALF_OPEN or (self.state == CLOSED and self.failures >= self.failure_threshold):
                self.retry_at = time.monotonic() + self.reset_seconds
                if self.state == CLOSED:
                    circuit_opened.labels(self.name).inc()
                    logger.warning("redis circuit opened", extra={"circuit": self.name, "failures": self.failures})
                self._set(OPEN)

    def reset(self) -> None:
        """Closed, no failures counted (tests, and a process that knows Redis is back)."""
        with self._lock:
            self.failures, self.retry_at = 0, 0.0
            self._set(CLOSED)

    @property
    def state_name(self) -> str:
        return _STATE_NAMES[self.state]

    def _set(self, state: int) -> None:
        self.state = state
        circuit_state.labels(self.name).set(state)


redis_breaker = CircuitBreaker("redis", failures=settings.REDIS_CIRCUIT_FAILURES,
                               reset_seconds=settings.REDIS_CIRCUIT_RESET_SECONDS)

_NETWORK_FAULTS = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)


class GuardedConnection(Connection):
    """redis-py's TCP connection, refusing at once while the circuit is open and reporting its outcomes to it."""

    breaker = redis_breaker

    def connect(self):
        if self._sock is not None:
            return
        if not self.breaker.allow():
            raise CircuitOpen("Redis circuit open: not connecting")
        try:
            super().connect()
        except _NETWORK_FAULTS:
            self.breaker.failure()
            raise

    def send_packed_command(self, command, check_health=True):
        if not self.breaker.allow():
            self.disconnect()  # a frozen server's socket is not worth keeping
            raise CircuitOpen("Redis circuit open: command not sent")
        try:
            return super().send_packed_command(command, check_health=check_health)
        except CircuitOpen:
            raise
        except _NETWORK_FAULTS:
            self.breaker.failure()
            raise

    def read_response(self, *args, **kwargs):
        try:
            response = super().read_response(*args, **kwargs)
        except _NETWORK_FAULTS:
            self.breaker.failure()
            raise
        self.breaker.success()
        return response


class GuardedConnectionPool(ConnectionPool):
    """The cache's pool (settings CACHES OPTIONS CONNECTION_POOL_CLASS): its TCP connections are guarded."""

    def __init__(self, connection_class=GuardedConnection, **kwargs):
        super().__init__(connection_class=connection_class, **kwargs)
