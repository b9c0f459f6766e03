"""The market simulator: funded bots (idempotently), reference prices that move inside the band, quotes and fills."""
import io
import random
from decimal import Decimal

import pytest
from django.core.management import call_command

from matching import market
from matching.models import Trade
from orders.models import Instrument, Order
from orders.selectors import instrument_get
from portfolios.models import JournalEntry
from portfolios.selectors import balances_for_user
from simulator import demo
from simulator.services import (
    FLOW_TRADER_EMAIL,
    MARKET_MAKER_EMAIL,
    instrument_reference_price_set,
    reference_walk,
    simulator_tick,
)
from simulator.tasks import simulator_tick as simulator_tick_task
from tests.trading_fixtures import assert_books_balanced, committed, match

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_books")]

def match_all() -> None:
    while match():
        pass


@pytest.fixture
def demo_trader():
    from accounts.models import User

    return User.objects.create_user(email="trader@brokerx.example", password="x-Trader-pass-1")


def test_seed_demo_funds_the_bots_and_the_trader_once(instrument, staff, demo_trader):
    out = io.StringIO()
    demo.seed_demo(out)
    entries = JournalEntry.objects.count()
    demo.seed_demo(out)

    assert JournalEntry.objects.count() == entries  # idempotent
    trader = balances_for_user(demo_trader)
    assert trader["cash_available"] == Decimal("100000") and trader["securities"]["ACME"]["available"] == 100
    from accounts.models import User

    maker = User.objects.get(email=MARKET_MAKER_EMAIL)
    assert not maker.has_usable_password() and maker.email_verified_at is not None
    assert balances_for_user(maker)["cash_available"] == Decimal("5000000")
    assert "house clearing" in out.getvalue()
    assert_books_balanced()


def test_reference_walk_stays_on_the_grid_and_near_its_anchor():
    rng = random.Random(7)
    price, tick = Decimal("100.00"), Decimal("0.01")
    seen = []
    for _ in range(2000):
        price = reference_walk(reference=price, anchor=Decimal("100.00"), tick=tick, volatility=Decimal("0.001"),
                               rng=rng)
        seen.append(price)
    assert all(p % tick == 0 and Decimal("50") <= p <= Decimal("200") for p in seen)
    assert len(set(seen)) > 50  # it moves
    assert Decimal("80") < sum(seen) / len(seen) < Decimal("120")  # and reverts


def test_reference_price_service_invalidates_the_cached_instrument(instrument, django_capture_on_commit_callbacks):
    assert instrument_get("ACME")["reference_price"] == Decimal("100.00")
    with django_capture_on_commit_callbacks(execute=True):
        instrument_reference_price_set(symbol="ACME", price=Decimal("101.37"))
    assert instrument_get("ACME")["reference_price"] == Decimal("101.37")
    assert Instrument.objects.get(symbol="ACME").reference_price == Decimal("101.37")


def test_ticks_move_prices_quote_inside_the_band_and_trade(instrument, staff):
    demo.seed_demo(io.StringIO())
    rng = random.Random(42)
    for _ in range(6):
        with committed():
            report = simulator_tick(rng=rng, symbols=["ACME"], volatility=Decimal("0.002"))
        match_all()
        assert report.symbols == 1

    reference = Instrument.objects.get(symbol="ACME").reference_price
    assert reference != Decimal("100.00")
    maker_orders = Order.objects.filter(user__email=MARKET_MAKER_EMAIL, status__in=["new", "partially_filled"])
    bids = sorted(o.limit_price for o in maker_orders if o.side == "buy")
    asks = sorted(o.limit_price for o in maker_orders if o.side == "sell")
    # Three levels a side, less at most the one a taker order just cleared.
    assert 2 <= len(bids) <= 3 and 2 <= len(asks) <= 3 and bids[-1] < asks[0]
    band = reference * instrument.price_band_pct
    assert all(abs(price - reference) <= band for price in bids + asks)
    # The flow trader crossed the spread: fills, candles and a quote with both sides.
    assert Trade.objects.filter(symbol="ACME").exists()
    assert Trade.objects.filter(buy_order__user__email=FLOW_TRADER_EMAIL).exists() or Trade.objects.filter(
        sell_order__user__email=FLOW_TRADER_EMAIL).exists()
    quote = market.market_quote("ACME")
    assert quote["bid"] is not None and quote["ask"] is not None and quote["last"] is not None
    assert market.market_bars("ACME")["bars"]
    assert_books_balanced()


def test_the_management_command_runs_ticks_and_matches(instrument, staff):
    demo.seed_demo(io.StringIO())
    out = io.StringIO()
    with committed():
        call_command("simulate_market", ticks=2, interval=0, seed=3, symbols=["ACME"], match=True, stdout=out)
    assert out.getvalue().count("tick ") == 2
    assert Order.objects.filter(user__email=MARKET_MAKER_EMAIL, book_seq__isnull=False).exists()
    assert_books_balanced()


def test_the_beat_task_does_nothing_unless_the_simulator_is_on(instrument, settings):
    settings.BROKERX_SIMULATOR = False
    assert simulator_tick_task() == 0
    assert not Order.objects.exists()


@pytest.mark.parametrize("jump", ["1.00", "-1.00"])
def test_the_market_maker_requotes_a_jump_without_crossing_its_own_quotes(instrument, staff, jump):
    """After a jump, the side moving away from the other is re-quoted first, so no new quote of the market maker
    meets its own old ones (self-trade prevention would cancel it, and the book would lose that level)."""
    demo.seed_demo(io.StringIO())
    rng = random.Random(7)
    with committed():
        simulator_tick(rng=rng, symbols=["ACME"], volatility=Decimal("0"))
    match_all()
    instrument_reference_price_set(symbol="ACME", price=Decimal("100.00") + Decimal(jump))
    with committed():
        report = simulator_tick(rng=rng, symbols=["ACME"], volatility=Decimal("0"))
    match_all()

    assert report.replaced >= 4
    maker = Order.objects.filter(user__email=MARKET_MAKER_EMAIL)
    assert not maker.filter(reason="self_trade").exists()
    bids = sorted(o.limit_price for o in maker.filter(side="buy", status__in=["new", "partially_filled"]))
    asks = sorted(o.limit_price for o in maker.filter(side="sell", status__in=["new", "partially_filled"]))
    assert bids and asks and bids[-1] < Decimal("100.00") + Decimal(jump) < asks[0]
    assert_books_balanced()


def test_a_fractionable_instrument_is_quoted_in_shares_and_trades_fractions(instrument, staff):
    Instrument.objects.filter(pk=instrument.pk).update(lot_size=Decimal("0.001"))
    instrument.refresh_from_db()
    from orders.selectors import instrument_cache_invalidate

    instrument_cache_invalidate("ACME")
    demo.seed_demo(io.StringIO())
    from accounts.models import User

    maker = User.objects.get(email=MARKET_MAKER_EMAIL)
    assert balances_for_user(maker)["securities"]["ACME"]["available"] == 20000  # whole shares, not 20000 lots
    rng = random.Random(5)
    for _ in range(8):
        with committed():
            simulator_tick(rng=rng, symbols=["ACME"], volatility=Decimal("0.002"))
        match_all()

    quotes = Order.objects.filter(user=maker, type="limit")
    # Quoted in whole shares (a re-quote keeps what a fractional fill took, so only the first size is whole).
    first_sizes = [o.events.order_by("id").first().data["qty"] for o in quotes]
    assert first_sizes and all(Decimal(q) >= 1 and Decimal(q) % 1 == 0 for q in first_sizes)
    assert any(t.qty % 1 for t in Trade.objects.filter(symbol="ACME"))  # a fraction of a share traded
    assert_books_balanced()
