"""A matching worker killed with SIGKILL mid-run loses nothing and applies nothing twice (real Celery processes)."""
import os
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Q, Sum

from matching.models import Trade
from orders.models import Order
from orders.services import OrderRequest, order_place
from outbox.models import OutboxEvent
from tests.polling import wait_until
from tests.trading_fixtures import assert_books_balanced

BASE_DIR = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def start_worker() -> subprocess.Popen:
    db = settings.DATABASES["default"]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "brokerx.settings.test", "DB_POOL_MAX": "0",
           "BROKERX_OUTBOX_BATCH": "10",  # many small transactions, so the kill lands in the middle of the run
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"}
    return subprocess.Popen([sys.executable, "-m", "celery", "-A", "brokerx", "worker", "-Q", "critical",
                             "--pool", "solo", "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
                            cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_a_killed_worker_loses_and_duplicates_nothing(instrument, make_trader):
    from outbox.tasks import outbox_drain

    sellers = [make_trader(shares={"ACME": "1000"}) for _ in range(3)]
    buyers = [make_trader(cash="200000") for _ in range(3)]
    for n in range(240):
        side = "sell" if n % 2 else "buy"
        user = (sellers if side == "sell" else buyers)[n % 3]
        price = Decimal("100.00") + (Decimal(n % 5) / 100 if side == "buy" else -Decimal(n % 3) / 100)
        order_place(user=user, request=OrderRequest(symbol="ACME", side=side, type="limit", time_in_force="gtc",
                                                    qty=Decimal(1 + n % 4), limit_price=price))
    connection.close()

    def pending() -> int:
        return OutboxEvent.objects.filter(topic="order.created", status="pending").count()

    worker = start_worker()
    try:
        outbox_drain.apply_async(args=["critical", "ACME"], queue="critical")
        # Kill it as soon as it has committed some batches but not all of them.
        assert wait_until(lambda: pending() < 240, 90), "the worker never started"
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        left_after_kill = pending()
    finally:
        if worker.poll() is None:
            worker.kill()

    worker = start_worker()
    try:
        outbox_drain.apply_async(args=["critical", "ACME"], queue="critical")
        assert wait_until(lambda: pending() == 0, 120), f"{pending()} orders never reached the book"
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)

    assert 0 < left_after_kill < 240, "the kill did not land mid-run"
    # Every accepted order went through the book exactly once: resting or terminal, never still "created".
    assert not Order.objects.filter(saga_state="created").exists()
    # No fill applied twice: each order's filled quantity equals the trades it took part in.
    for order in Order.objects.all():
        traded = Trade.objects.filter(Q(buy_order=order) | Q(sell_order=order)).aggregate(q=Sum("qty"))["q"] or 0
        assert order.cum_qty == traded, f"order {order.pk}: cum_qty {order.cum_qty} != traded {traded}"
        assert order.qty == order.cum_qty + order.leaves_qty or order.status in ("canceled", "expired", "rejected")
    assert Trade.objects.exists()
    assert_books_balanced()
