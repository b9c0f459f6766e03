"""Django's PostgreSQL backend, plus a check of each pooled connection before use that costs no round trip.

After Postgres terminates the backends or restarts, every connection idle in the pool is dead, and handing them out
made requests and drains fail one by one until the pool had cycled. psycopg_pool's own check
(`ConnectionPool.check_connection`, which Django enables with CONN_HEALTH_CHECKS) sends an empty query on every
checkout: one more round trip per request and per task on the order-entry path. An idle connection has nothing to
read, though: when its socket is readable, the server has said goodbye (the error it sends before it closes the
connection) or the socket is closed. So a poll of the socket, with timeout 0, tells them apart; only a readable
connection gets the real check, and a dead one goes back to the pool, which drops it and opens another (ADR 009).
A connection that dies while in use still fails its request: 503 + Retry-After (brokerx/error_responses.py).
"""
import select

from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool


def idle_connection_dead(connection) -> bool:
    """Whether an idle psycopg connection is closed, broken or has been told goodbye by the server."""
    if connection.closed or connection.broken:
        return True
    poller = select.poll()
    poller.register(connection.fileno(), select.POLLIN)
    if not poller.poll(0):
        return False
    try:
        ConnectionPool.check_connection(connection)  # reads what arrived: the server's error, or a harmless notice
    except Exception:  # noqa: BLE001  (whatever it was, the connection is not usable)
        return True
    return False


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        pool = self.pool
        if pool is None:
            return connection
        for _ in range(pool.max_size):  # after a restart every pooled connection may be dead
            if not idle_connection_dead(connection):
                return connection
            pool.putconn(connection)  # unusable: the pool discards it and opens a replacement
            connection = super().get_new_connection(conn_params)
        return connection
