"""Portfolio history (equity over time) from BrokerX's records: the ledger says what the account owned at each moment,
the one-minute bars what its shares were worth then. Nothing is sampled or stored, so any window can be asked for.
Served in Alpaca's shape on /v2/account/portfolio/history and as it is on the native /api/v1/portfolio/history."""
import re
from bisect import bisect_left
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from django.apps import apps
from django.utils import timezone

from .models import JournalEntry, LedgerAccount
from .selectors import OWNED_CASH_KINDS, instrument_prices, ledger_history_for_user

TIMEFRAMES = {"1Min": timedelta(minutes=1), "5Min": timedelta(minutes=5), "15Min": timedelta(minutes=15),
              "1H": timedelta(hours=1), "1D": timedelta(days=1)}
PERIOD_UNITS = {"D": 1, "W": 7, "M": 30, "A": 365}
MAX_POINTS = 10_000
# Money the client moved in or out (or shares transferred): not profit or loss.
FLOW_KINDS = (JournalEntry.Kind.DEPOSIT_SETTLE, JournalEntry.Kind.WITHDRAWAL, JournalEntry.Kind.ADJUSTMENT)
SECURITIES_KINDS = LedgerAccount.CLIENT_SECURITIES_KINDS
ZERO = Decimal("0")


class InvalidWindow(ValueError):
    """A period, timeframe or range that names no window; each API renders it in its own error shape."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message



@dataclass(frozen=True)
class Window:
    starts: list[datetime]  # each point's left edge, as Alpaca labels them
    step: timedelta
    timeframe: str


def window_from(*, period: str | None, timeframe: str | None, start: datetime | None = None,
                end: datetime | None = None, date_end=None, now: datetime | None = None) -> Window:
    """Alpaca's parameters: `period` (number + D/W/M/A, default 1M) back from `end` (or the end of `date_end`, or
    now), or from `start`; `timeframe` 1Min/5Min/15Min/1H/1D, by default after the period's length as Alpaca does."""
    now = now or timezone.now()
    match = re.fullmatch(r"(\d{1,4})([DWMA])", period or "1M")
    if match is None or int(match[1]) == 0:
        raise InvalidWindow(f"invalid period: {period} (expected e.g. 1D, 2W, 1M, 1A)")
    length = timedelta(days=int(match[1]) * PERIOD_UNITS[match[2]])
    try:
        if end is None and date_end is not None:
            end = datetime.combine(date_end + timedelta(days=1), time(), UTC)
        if start is not None and end is None and period is not None:
            end = start + length  # a period from start, as Alpaca reads start with period
        end = min(end or now, now)
        if start is not None and period is None:
            length = end - start
        start = start or end - length
    except OverflowError:
        raise InvalidWindow("the window reaches beyond the calendar") from None
    if start >= end:
        raise InvalidWindow("start must be before end")
    if timeframe is None:
        timeframe = "1Min" if length < timedelta(days=7) else "15Min" if length < timedelta(days=30) else "1D"
    if timeframe not in TIMEFRAMES:
        raise InvalidWindow(f"invalid timeframe: {timeframe} (expected one of {', '.join(TIMEFRAMES)})")
    step = TIMEFRAMES[timeframe]
    first = datetime.fromtimestamp(int(start.timestamp()) // int(step.total_seconds()) * int(step.total_seconds()),
                                   UTC)
    count = -(-(end - first) // step)
    if count > MAX_POINTS:
        raise InvalidWindow(f"at most {MAX_POINTS} points per request: choose a shorter period or a longer timeframe")
    return Window(starts=[first + i * step for i in range(count)], step=step, timeframe=timeframe)


class _Prices:
    """The close of each symbol's last one-minute bar begun before a moment; the current mark where none is."""

    def __init__(self, symbols: set[str], start: datetime, end: datetime):
        self.bars: dict[str, tuple[list[datetime], list[Decimal]]] = {}
        Bar = apps.get_model("matching", "Bar")  # read through the registry: portfolios does not import matching
        before = (Bar.objects.filter(symbol__in=symbols, start__lt=start).order_by("symbol", "-start")
                  .distinct("symbol").values_list("symbol", "start", "close"))
        inside = (Bar.objects.filter(symbol__in=symbols, start__gte=start, start__lt=end).order_by("start")
                  .values_list("symbol", "start", "close"))
        for symbol, bar_start, close in [*before, *inside]:
            starts, closes = self.bars.setdefault(symbol, ([], []))
            starts.append(bar_start)
            closes.append(close)
        self.marks = instrument_prices(symbols)

    def at(self, symbol: str, moment: datetime) -> Decimal:
        starts, closes = self.bars.get(symbol, ((), ()))
        index = bisect_left(starts, moment) - 1
        if index >= 0:
            return closes[index]
        return self.marks.get(symbol, ZERO)


def portfolio_history(user, window: Window, *, now: datetime | None = None) -> dict:
    """Equity at the end of each window (now for the last), its profit or loss against the equity at the first
    window's start (`base_value`), deposits, withdrawals and transfers excluded, and that as a fraction."""
    now = now or timezone.now()
    base_at = window.starts[0]
    moments = [min(s + window.step, now) for s in window.starts]
    opening, changes = ledger_history_for_user(user, start=base_at, end=moments[-1])
    cash = sum((v for (kind, _), v in opening.items() if kind in OWNED_CASH_KINDS), ZERO)
    shares: dict[str, Decimal] = {}
    for (kind, asset), qty in opening.items():
        if kind in SECURITIES_KINDS:
            shares[asset] = shares.get(asset, ZERO) + qty
    symbols = set(shares) | {asset for *_, kind, asset, _ in changes if kind in SECURITIES_KINDS}
    prices = _Prices(symbols, base_at, moments[-1])

    def equity(at: datetime) -> Decimal:
        return cash + sum((qty * prices.at(s, at) for s, qty in shares.items() if qty), ZERO)

    base_value = equity(base_at)
    flows, index = ZERO, 0
    equities, profits, percents = [], [], []
    for moment in moments:
        while index < len(changes) and changes[index][0] <= moment:
            at, entry_kind, kind, asset, amount = changes[index]
            index += 1
            if kind in OWNED_CASH_KINDS:
                cash += amount
                flows += amount if entry_kind in FLOW_KINDS else ZERO
            elif kind in SECURITIES_KINDS:
                shares[asset] = shares.get(asset, ZERO) + amount
                if entry_kind == JournalEntry.Kind.ADJUSTMENT:
                    flows += amount * prices.at(asset, at)
        value = equity(moment)
        profit = value - base_value - flows
        invested = base_value + flows
        equities.append(float(round(value, 4)))
        profits.append(float(round(profit, 4)))
        percents.append(float(round(profit / invested, 6)) if invested > 0 else None)
    return {"timestamp": [int(s.timestamp()) for s in window.starts], "equity": equities, "profit_loss": profits,
            "profit_loss_pct": percents, "base_value": float(round(base_value, 4)), "timeframe": window.timeframe,
            "cashflow": {}}
