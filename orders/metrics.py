"""Prometheus counters of the TradingSaga lifecycle."""
from prometheus_client import Counter

saga_started = Counter("saga_started", "Trading sagas started (order validated, reserved and created)")
saga_completed = Counter("saga_completed", "Trading sagas finished", ["status"])
saga_compensations = Counter("saga_compensations", "Trading sagas compensated (reservation released, order canceled)")
orders_rejected = Counter("orders_rejected", "Orders refused by a pre-trade check", ["code"])
