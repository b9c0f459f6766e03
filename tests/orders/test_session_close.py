"""The session close records each instrument's previous close once; positions show their change since it."""
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from matching.models import Trade
from orders.models import Instrument, Order
from orders.services import instruments_record_close
from portfolios.selectors import portfolio_for_user

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)  # the default session closes 23:59:59 UTC: the last was Dec 3rd


def _trade(instrument, price: str, at: datetime, user) -> None:
    order = Order.objects.create(user=user, instrument=instrument, symbol=instrument.symbol, side="buy",
                                 type="limit", time_in_force="day", qty=1, limit_price=Decimal(price),
                                 leaves_qty=1, client_order_id=f"t{price}")
    trade = Trade.objects.create(symbol=instrument.symbol, price=Decimal(price), qty=1, buy_order=order,
                                 sell_order=order, aggressor_side="buy", buyer_fee=0, seller_fee=0)
    Trade.objects.filter(pk=trade.pk).update(executed_at=at)


def test_the_close_is_the_last_trade_before_it_and_is_recorded_once(instrument, make_trader):
    user = make_trader()
    close = datetime(2026, 12, 3, 23, 59, 59, tzinfo=UTC)
    _trade(instrument, "101.50", close - timedelta(minutes=5), user)
    _trade(instrument, "102.00", close + timedelta(seconds=1), user)  # after the close: not the close
    Instrument.objects.filter(pk=instrument.pk).update(last_price=Decimal("102.00"))
    other = Instrument.objects.create(symbol="NOTR", name="Never traded", reference_price=Decimal("7.25"))

    assert instruments_record_close(now=NOW) == 2
    instrument.refresh_from_db()
    other.refresh_from_db()
    assert (instrument.previous_close, str(instrument.previous_close_date)) == (Decimal("101.50"), "2026-12-03")
    assert other.previous_close == Decimal("7.25")

    Instrument.objects.filter(pk=instrument.pk).update(last_price=Decimal("120"))
    assert instruments_record_close(now=NOW + timedelta(hours=1)) == 0  # same session: nothing written again
    instrument.refresh_from_db()
    assert instrument.previous_close == Decimal("101.50")


def test_positions_show_lastday_price_and_change_today(instrument, make_trader, api_client):
    user = make_trader(shares={"ACME": "10"})
    Instrument.objects.filter(pk=instrument.pk).update(last_price=Decimal("110"), previous_close=Decimal("100"))

    [row] = portfolio_for_user(user)["positions"]
    assert (row["lastday_price"], row["change_today"]) == (Decimal("100"), Decimal("0.1"))

    from accounts.services import jwt_issue

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {jwt_issue(user=user)['access']}")
    [position] = api_client.get("/api/v1/portfolio").json()["positions"]
    assert Decimal(position["lastday_price"]) == 100 and Decimal(position["change_today"]) == Decimal("0.1")


def test_without_a_recorded_close_the_change_is_null(instrument, make_trader):
    user = make_trader(shares={"ACME": "1"})
    [row] = portfolio_for_user(user)["positions"]
    assert row["lastday_price"] is None and row["change_today"] is None
