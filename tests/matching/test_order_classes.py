"""Order classes and trailing stops through the durable matching worker: brackets, OTO, OCO pairs, trailing stops,
their reservations in the ledger, class-wide cancels and a restart in the middle (matching/engine/README.md)."""
from decimal import Decimal

import pytest

from matching.services import book_forget
from orders.errors import OrderRejected
from orders.models import Order
from orders.services import OrderRequest, order_cancel, order_place, order_replace
from tests.trading_fixtures import assert_books_balanced, balance, match

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_books")]


def place(user, side, qty, price=None, *, type="limit", tif="gtc", stop=None, **extra) -> Order:
    order, _ = order_place(user=user, request=OrderRequest(
        symbol="ACME", side=side, type=type, time_in_force=tif, qty=Decimal(qty),
        limit_price=Decimal(price) if price else None, stop_price=Decimal(stop) if stop else None,
        **{name: Decimal(value) if isinstance(value, str) and name != "order_class" else value
           for name, value in extra.items()}))
    return order


def state(order: Order) -> tuple:
    order = Order.objects.get(pk=order.pk)
    return order.status, order.qty, order.cum_qty, order.leaves_qty, order.reserved_amount


def legs(order: Order) -> list[Order]:
    return list(Order.objects.filter(parent=order).order_by("id"))


def trade_at(price: str, qty: str, make_trader) -> None:
    """Two outsiders trade `qty` at `price`, moving the last price there."""
    seller, buyer = make_trader(shares={"ACME": qty}), make_trader(cash="100000")
    place(seller, "sell", qty, price)
    place(buyer, "buy", qty, price)
    match()


def test_a_bracket_holds_its_legs_then_grows_them_with_each_fill_and_one_exit_cancels_the_other(
        instrument, make_trader):
    trader = make_trader(cash="5000")
    entry = place(trader, "buy", "10", "100.00", order_class="bracket", take_profit="110.00", stop_loss="95.00")
    take_profit, stop_loss = legs(entry)
    assert (take_profit.type, take_profit.limit_price, stop_loss.type, stop_loss.stop_price) == (
        "limit", Decimal("110.00"), "stop", Decimal("95.00"))
    match()
    assert state(take_profit)[:2] == state(stop_loss)[:2] == ("held", 0)

    seller = make_trader(shares={"ACME": "10"})
    place(seller, "sell", "4", "100.00")
    match()
    assert state(entry)[:3] == ("partially_filled", 10, 4)
    # Both exits are live for what the entry bought; the pair's one reservation holds those 4 shares.
    assert state(take_profit) == ("new", 4, 0, 4, 4)
    assert state(stop_loss) == ("new", 4, 0, 4, 0)
    assert balance(trader, "securities_reserved", "ACME") == 4
    assert balance(trader, "securities_available", "ACME") == 0
    assert_books_balanced()

    place(seller, "sell", "6", "100.00")
    match()
    assert state(entry)[:3] == ("filled", 10, 10)
    assert state(take_profit) == ("new", 10, 0, 10, 10)
    assert state(stop_loss)[:4] == ("new", 10, 0, 10)

    # Someone lifts 3 at the take-profit: the stop-loss shrinks with it.
    buyer = make_trader(cash="5000")
    place(buyer, "buy", "3", "110.00", tif="ioc")
    match()
    assert state(take_profit) == ("partially_filled", 10, 3, 7, 7)
    assert state(stop_loss)[:4] == ("new", 7, 0, 7)
    assert_books_balanced()

    # The price falls through the stop: the stop-loss sells the remaining 7, the take-profit goes.
    bidder = make_trader(cash="5000")
    place(bidder, "buy", "20", "94.00")
    trade_at("95.00", "1", make_trader)
    assert state(stop_loss)[:4] == ("filled", 7, 7, 0)
    status, _, cum, leaves, reserved = state(take_profit)
    assert (status, cum, leaves, reserved) == ("canceled", 3, 0, 0)
    assert Order.objects.get(pk=take_profit.pk).reason == "oco"
    assert balance(trader, "securities_reserved", "ACME") == 0
    assert balance(trader, "securities_available", "ACME") == 0  # 10 bought, 3 + 7 sold: never more
    assert_books_balanced()


def test_an_oco_pair_reserves_the_position_once_and_a_fill_of_one_cancels_the_other(instrument, make_trader):
    trader = make_trader(shares={"ACME": "10"})
    first = place(trader, "sell", "10", order_class="oco", take_profit="105.00", stop_loss="95.00",
                  stop_loss_limit="94.00")
    (stop_loss,) = legs(first)
    assert (first.type, first.limit_price, stop_loss.type, stop_loss.stop_price, stop_loss.limit_price) == (
        "limit", Decimal("105.00"), "stop_limit", Decimal("95.00"), Decimal("94.00"))
    assert balance(trader, "securities_reserved", "ACME") == 10  # once for the pair
    match()
    assert state(first)[0] == state(stop_loss)[0] == "new"
    # The same shares cannot be sold a third time.
    with pytest.raises(OrderRejected) as refused:
        place(trader, "sell", "1", "108.00")
    assert refused.value.code == "insufficient_shares"

    buyer = make_trader(cash="5000")
    place(buyer, "buy", "10", "105.00")
    match()
    assert state(first) == ("filled", 10, 10, 0, 0)
    assert state(stop_loss)[0] == "canceled" and Order.objects.get(pk=stop_loss.pk).reason == "oco"
    assert balance(trader, "securities_reserved", "ACME") == 0
    assert_books_balanced()


def test_an_oco_stop_that_fills_draws_on_the_pairs_reservation(instrument, make_trader):
    trader = make_trader(shares={"ACME": "10"})
    first = place(trader, "sell", "10", order_class="oco", take_profit="105.00", stop_loss="95.00")
    (stop_loss,) = legs(first)
    match()
    bidder = make_trader(cash="5000")
    place(bidder, "buy", "10", "94.00")
    trade_at("95.00", "1", make_trader)
    assert state(stop_loss)[:4] == ("filled", 10, 10, 0)
    assert state(first)[0] == "canceled"
    assert balance(trader, "securities_reserved", "ACME") == 0
    assert balance(trader, "securities_available", "ACME") == 0
    assert_books_balanced()


def test_an_oto_entry_that_ends_unfilled_cancels_its_held_leg_and_cancel_takes_the_class(instrument, make_trader):
    trader = make_trader(cash="5000")
    entry = place(trader, "buy", "5", "99.00", order_class="oto", stop_loss="90.00")
    (leg,) = legs(entry)
    match()
    order_cancel(user=trader, order_id=leg.pk, version=None)  # canceling the leg takes the class
    match()
    assert state(entry)[0] == state(leg)[0] == "canceled"
    assert balance(trader, "cash_reserved") == 0
    assert_books_balanced()


def test_a_held_leg_cannot_be_replaced_and_a_legs_quantity_follows_its_class(instrument, make_trader):
    trader = make_trader(cash="5000")
    entry = place(trader, "buy", "5", "99.00", order_class="bracket", take_profit="110.00", stop_loss="90.00")
    take_profit, _ = legs(entry)
    match()
    with pytest.raises(OrderRejected) as refused:
        order_replace(user=trader, order_id=take_profit.pk, version=None, limit_price=Decimal("111.00"))
    assert refused.value.code == "leg_held"
    place(make_trader(shares={"ACME": "5"}), "sell", "5", "99.00")
    match()
    with pytest.raises(OrderRejected) as refused:
        order_replace(user=trader, order_id=take_profit.pk, version=None, qty=Decimal("9"))
    assert refused.value.code == "class_qty"
    moved = order_replace(user=trader, order_id=take_profit.pk, version=None, limit_price=Decimal("108.00"))
    match()
    assert moved.limit_price == Decimal("108.00") and state(take_profit)[:4] == ("new", 5, 0, 5)
    assert_books_balanced()


def test_a_bracket_survives_a_restart_of_the_matching_worker(instrument, make_trader):
    trader = make_trader(cash="5000")
    entry = place(trader, "buy", "10", "100.00", order_class="bracket", take_profit="110.00", stop_loss="95.00")
    take_profit, stop_loss = legs(entry)
    match()
    book_forget()  # a new worker rebuilds the book: held legs and their entry from the database
    seller = make_trader(shares={"ACME": "10"})
    place(seller, "sell", "4", "100.00")
    match()
    assert state(take_profit)[:2] == state(stop_loss)[:2] == ("new", 4)
    book_forget()  # and again with live legs whose entry is still open
    place(seller, "sell", "6", "100.00")
    match()
    assert state(take_profit)[:2] == ("new", 10) and state(stop_loss)[:2] == ("new", 10)
    book_forget()
    place(make_trader(cash="5000"), "buy", "10", "110.00")
    match()
    assert state(take_profit)[0] == "filled" and state(stop_loss)[0] == "canceled"
    assert_books_balanced()


@pytest.mark.parametrize("trail", [{"trail_price": "2.00"}, {"trail_percent": "2"}])
def test_a_trailing_stop_follows_the_high_and_sells_on_the_drop(instrument, make_trader, trail):
    trade_at("100.00", "1", make_trader)
    trader = make_trader(shares={"ACME": "5"})
    stop = place(trader, "sell", "5", type="trailing_stop", **trail)
    match()
    stop = Order.objects.get(pk=stop.pk)
    assert (stop.hwm, stop.stop_price) == (Decimal("100.00"), Decimal("98.00"))
    trade_at("104.00", "1", make_trader)
    book_forget()  # the mark survives a restart
    stop = Order.objects.get(pk=stop.pk)
    assert (stop.status, stop.hwm, stop.stop_price) == ("new", Decimal("104.00"),
                                                        Decimal("102.00") if "trail_price" in trail else
                                                        Decimal("101.92"))
    trade_at("103.00", "1", make_trader)
    assert Order.objects.get(pk=stop.pk).status == "new"
    bidder = make_trader(cash="5000")
    place(bidder, "buy", "5", "101.00")
    trade_at("101.50", "1", make_trader)
    stop = Order.objects.get(pk=stop.pk)
    assert (stop.status, stop.cum_qty, stop.stop_triggered) == ("filled", 5, True)
    assert_books_balanced()


def test_replacing_the_trail_moves_the_stop_from_the_same_mark(instrument, make_trader):
    trade_at("100.00", "1", make_trader)
    trader = make_trader(shares={"ACME": "5"})
    stop = place(trader, "sell", "5", type="trailing_stop", trail_price="2.00")
    match()
    order_replace(user=trader, order_id=stop.pk, version=None, trail_price=Decimal("5.00"))
    match()
    stop = Order.objects.get(pk=stop.pk)
    assert (stop.trail_price, stop.hwm, stop.stop_price) == (Decimal("5.00"), Decimal("100.00"), Decimal("95.00"))
    assert_books_balanced()


@pytest.mark.parametrize(("extra", "code"), [
    ({"order_class": "bracket", "take_profit": "110.00"}, "missing_legs"),
    ({"order_class": "bracket", "take_profit": "95.00", "stop_loss": "110.00"}, "invalid_legs"),
    ({"order_class": "bracket", "take_profit": "99.00", "stop_loss": "90.00"}, "invalid_legs"),
    ({"order_class": "oto", "take_profit": "110.00", "stop_loss": "90.00"}, "invalid_order_class"),
    ({"take_profit": "110.00"}, "unexpected_legs"),
    ({"trail_price": "1.00"}, "invalid_trail"),
])
def test_malformed_classes_are_refused_and_write_nothing(instrument, make_trader, extra, code):
    trader = make_trader(cash="5000")
    with pytest.raises(OrderRejected) as refused:
        place(trader, "buy", "5", "100.00", **extra)
    assert refused.value.code == code
    assert not Order.objects.exists()
    assert balance(trader, "cash_reserved") == 0
