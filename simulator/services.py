"""The market simulator: reference prices as a random walk, and bots that quote and trade through the order services.

A market maker keeps LEVELS bids and asks around each symbol's reference price (placing, replacing and cancelling
through orders.services like any client, so reservations, the outbox and matching all run for real); a flow trader
now and then crosses the spread with a small IOC order, so the demo has trades and candles. The bots' cash and
shares are the market maker's inventory, posted through the ledger against house clearing (ADR 005).
"""
import logging
import random
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django_redis import get_redis_connection

from brokerx.demo_users import DEMO_STAFF_EMAIL
from notifications.services import EMAIL_PREFERENCES, preference_update
from orders.errors import OrderError
from orders.models import OPEN_STATUSES, Instrument, Order, OrderType, TradingStatus
from orders.selectors import instrument_cache_invalidate
from orders.services import OrderRequest, order_cancel, order_place, order_replace
from portfolios.models import LedgerAccount
from portfolios.selectors import balances_for_user
from portfolios.services import adjustment_post

logger = logging.getLogger(__name__)

MARKET_MAKER_EMAIL = "market-maker@brokerx.example"
FLOW_TRADER_EMAIL = "flow-trader@brokerx.example"
LEVELS = 3
HALF_SPREAD = Decimal("0.0005")  # of the reference price, at least one tick
LEVEL_STEP = Decimal("0.0005")
LEVEL_LOTS = (20, 40, 80)  # size of each level, in round lots (`round_lot`), before a little noise
TAKE_PROBABILITY = 0.6
MEAN_REVERSION = 0.02  # share of the distance to the anchor price pulled back each tick
# Inventory: cash for the market maker's bids, shares (in round lots) per symbol for its asks; topped up below half.
BOT_CASH = Decimal("5000000")
BOT_LOTS = 20000
TRADER_CASH = Decimal("100000")
TRADER_LOTS = 100


@dataclass
class TickReport:
    symbols: int = 0
    placed: int = 0
    replaced: int = 0
    canceled: int = 0
    taken: int = 0
    refused: int = 0


def round_lot(instrument: Instrument) -> Decimal:
    """The simulator's unit of size: one share, or the lot where a lot is more (a fractionable instrument's lot is a
    sliver of a share, too small to size quotes and inventory in)."""
    return max(instrument.lot_size, Decimal("1"))


# --- reference prices -------------------------------------------------------------------------------

def instrument_reference_price_set(*, symbol: str, price: Decimal) -> Instrument:
    """Move a symbol's reference price (the centre of its price band); cached copies are dropped after commit."""
    with transaction.atomic():
        instrument = Instrument.objects.select_for_update().get(symbol=symbol)
        instrument.reference_price = price
        instrument.save(update_fields=["reference_price", "updated_at"])
        transaction.on_commit(lambda: instrument_cache_invalidate(symbol))
    return instrument


def reference_walk(*, reference: Decimal, anchor: Decimal, tick: Decimal, volatility: Decimal,
                   rng: random.Random) -> Decimal:
    """One step of a mean-reverting random walk on the tick grid (the float is only the random draw)."""
    sigma_ticks = max(float(reference * volatility / tick), 0.5)
    pull = float((anchor - reference) / tick) * MEAN_REVERSION
    steps = int(round(rng.gauss(pull, sigma_ticks)))
    low, high = _on_grid(anchor / 2, tick, ROUND_CEILING), _on_grid(anchor * 2, tick, ROUND_FLOOR)
    return min(max(reference + steps * tick, low, tick), high)


def _on_grid(price: Decimal, step: Decimal, rounding) -> Decimal:
    return (price / step).to_integral_value(rounding=rounding) * step


def _anchor(symbol: str, reference: Decimal) -> Decimal:
    """The price the walk reverts to: the reference price when the simulator first saw the symbol."""
    key = f"simulator:anchor:{symbol}"
    cache.add(key, str(reference), timeout=None)
    return Decimal(cache.get(key) or reference)


# --- bots and their inventory -----------------------------------------------------------------------------

def bot_user(email: str, *, name: str):
    """A bot account: verified so it may trade, with no usable password so nobody signs in as it."""
    user, created = get_user_model().objects.get_or_create(
        email=email, defaults={"first_name": name, "last_name": "(simulator)", "email_verified_at": timezone.now()})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
        # Nobody reads a bot's mail: no confirmation e-mails for its thousands of fills.
        preference_update(user_id=user.pk, changes=dict.fromkeys(EMAIL_PREFERENCES, False))
    return user


def _operator():
    """The staff user recorded on inventory postings: the demo staff, else the first active staff member."""
    staff = get_user_model().objects.filter(is_staff=True, is_active=True)
    return staff.filter(email=DEMO_STAFF_EMAIL).first() or staff.order_by("pk").first()


def inventory_top_up(*, user, symbols: list[Instrument], cash: Decimal, lots: int, operator=None,
                     only_if_new: bool = False) -> int:
    """Bring the user's available cash and shares up to `cash` and `lots` when below half of it, by adjustments
    against house clearing. With `only_if_new`, fund only accounts never opened (a real trader's are left alone).
    Returns how many adjustments were posted."""
    operator = operator or _operator()
    if operator is None:
        logger.warning("no staff user to record the simulator's inventory postings; not funded")
        return 0
    currency = settings.LEDGER_CURRENCY
    balances = balances_for_user(user)
    opened = set(LedgerAccount.objects.filter(owner=user).values_list("kind", "asset"))
    posted = 0
    wanted = [(LedgerAccount.Kind.CASH_AVAILABLE, currency, cash, balances["cash_available"], None)]
    for instrument in symbols:
        held = balances["securities"].get(instrument.symbol, {}).get("available", Decimal("0"))
        wanted.append((LedgerAccount.Kind.SECURITIES_AVAILABLE, instrument.symbol, lots * round_lot(instrument), held,
                       instrument.reference_price))
    for kind, asset, target, held, unit_cost in wanted:
        if only_if_new and (kind, asset) in opened:
            continue
        if held * 2 >= target:
            continue
        adjustment_post(staff_user=operator, user=user, kind=kind, asset=asset, amount=target - held,
                        reason="market simulator inventory (funded from house clearing)", unit_cost=unit_cost)
        posted += 1
    return posted


# --- one tick ----------------------------------------------------------------------------------------------

def _ladder(instrument: Instrument, reference: Decimal, rng: random.Random) -> dict[str, dict[Decimal, Decimal]]:
    """The market maker's wanted quotes: {side: {price: qty}}, well inside the price band."""
    tick, lot = instrument.tick_size, round_lot(instrument)
    band = reference * instrument.price_band_pct
    half_spread = max(reference * HALF_SPREAD, tick)
    step = max(reference * LEVEL_STEP, tick)
    ladder: dict[str, dict[Decimal, Decimal]] = {"buy": {}, "sell": {}}
    for level in range(LEVELS):
        offset = min(half_spread + level * step, band / 2)
        qty = lot * max(1, LEVEL_LOTS[level % len(LEVEL_LOTS)] + rng.randint(-5, 5))
        ladder["buy"][_on_grid(reference - offset, tick, ROUND_FLOOR)] = qty
        ladder["sell"][_on_grid(reference + offset, tick, ROUND_CEILING)] = qty
    return ladder


def _quote(maker, instrument: Instrument, reference: Decimal, rng: random.Random, report: TickReport) -> None:
    ladder = _ladder(instrument, reference, rng)
    resting = Order.objects.filter(user=maker, symbol=instrument.symbol, status__in=OPEN_STATUSES,
                                   type=OrderType.LIMIT).order_by("pk")
    resting = list(resting)
    # A quote within half a level of a wanted price stays (keeping its time priority); only quotes the reference
    # has moved away from are replaced. Re-quoting every level on every one-tick move cost the demo most of a core.
    tolerance = max(reference * LEVEL_STEP, instrument.tick_size) / 2
    # The side moving away from the other goes first (bids when prices fall, asks when they rise): a new quote
    # must not meet the maker's own old one on the other side (self-trade prevention would cancel it).
    bids = [o.limit_price for o in resting if o.side == "buy"]
    rising = bool(bids) and reference > max(bids) + max(reference * HALF_SPREAD, instrument.tick_size)
    for side in ("sell", "buy") if rising else ("buy", "sell"):
        wanted = ladder[side]
        stale = []
        for order in (o for o in resting if o.side == side):
            near = min(wanted, key=lambda price: abs(price - order.limit_price), default=None)
            if near is not None and abs(near - order.limit_price) <= tolerance:
                wanted.pop(near)
            else:
                stale.append(order)
        for price, qty in list(wanted.items()):
            try:
                if stale:
                    order = stale.pop()
                    order_replace(user=maker, order_id=order.pk, version=order.version, limit_price=price,
                                  qty=order.cum_qty + qty)
                    report.replaced += 1
                else:
                    order_place(user=maker, request=OrderRequest(
                        symbol=instrument.symbol, side=side, type=OrderType.LIMIT, time_in_force="gtc", qty=qty,
                        limit_price=price))
                    report.placed += 1
            except OrderError as exc:
                # A fill or cancel got there first (stale version, closed), or inventory ran short: next tick.
                report.refused += 1
                logger.info("simulator quote refused", extra={"symbol": instrument.symbol, "code": exc.code})
        for order in stale:
            try:
                order_cancel(user=maker, order_id=order.pk, version=order.version, reason="requote")
                report.canceled += 1
            except OrderError:
                report.refused += 1


def _take(flow, instrument: Instrument, reference: Decimal, rng: random.Random, report: TickReport) -> None:
    """A small IOC order through the first level or two of the market maker's quotes."""
    side = rng.choice(("buy", "sell"))
    reach = max(reference * (HALF_SPREAD + LEVEL_STEP), instrument.tick_size)
    price = (_on_grid(reference + reach, instrument.tick_size, ROUND_CEILING) if side == "buy"
             else _on_grid(reference - reach, instrument.tick_size, ROUND_FLOOR))
    unit, lot = round_lot(instrument), instrument.lot_size
    qty = unit * rng.randint(1, 25)
    if lot < unit:  # fractionable: part of a share too, so fractional fills and positions are part of the demo
        qty += lot * rng.randint(0, int(unit / lot) - 1)
    try:
        order_place(user=flow, request=OrderRequest(symbol=instrument.symbol, side=side, type=OrderType.LIMIT,
                                                    time_in_force="ioc", qty=qty, limit_price=price))
        report.taken += 1
    except OrderError as exc:
        report.refused += 1
        logger.info("simulator take refused", extra={"symbol": instrument.symbol, "code": exc.code})


def simulator_tick(*, rng: random.Random | None = None, symbols: list[str] | None = None,
                   volatility: Decimal | None = None) -> TickReport:
    """Move every open symbol's reference price one step, re-quote the market maker, maybe send a taker order."""
    rng = rng or random.Random()  # noqa: S311 - a simulation, not a secret
    volatility = settings.BROKERX_SIMULATOR_VOLATILITY if volatility is None else volatility
    maker = bot_user(MARKET_MAKER_EMAIL, name="Market maker")
    flow = bot_user(FLOW_TRADER_EMAIL, name="Flow trader")
    instruments = Instrument.objects.filter(trading_status=TradingStatus.OPEN, is_tradable=True).order_by("symbol")
    if symbols:
        instruments = instruments.filter(symbol__in=[s.upper() for s in symbols])
    instruments = list(instruments)
    report = TickReport()
    for instrument in instruments:
        reference = reference_walk(reference=instrument.reference_price, tick=instrument.tick_size,
                                   anchor=_anchor(instrument.symbol, instrument.reference_price),
                                   volatility=volatility, rng=rng)
        if reference != instrument.reference_price:
            instrument = instrument_reference_price_set(symbol=instrument.symbol, price=reference)
        _quote(maker, instrument, reference, rng, report)
        if rng.random() < TAKE_PROBABILITY:
            _take(flow, instrument, reference, rng, report)
        report.symbols += 1
    if report.refused:
        # Inventory drifts as the bots trade; restore it rather than let one side of the book run dry.
        for bot in (maker, flow):
            inventory_top_up(user=bot, symbols=instruments, cash=BOT_CASH, lots=BOT_LOTS)
    return report


def simulator_run_once(**kwargs) -> TickReport | None:
    """One tick, unless another process is running one (a beat tick that outlived its interval)."""
    lock = get_redis_connection("default").lock(
        cache.make_key("simulator:tick-lock"), timeout=max(30.0, settings.BROKERX_SIMULATOR_INTERVAL * 10),
        blocking=False)
    if not lock.acquire():
        return None
    try:
        return simulator_tick(**kwargs)
    finally:
        try:
            lock.release()
        except Exception:  # expired: the next tick runs anyway
            logger.warning("simulator tick outlived its lock")

