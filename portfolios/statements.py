"""Monthly account statements: a trader's calendar month (UTC) read from the ledger, as a plain dataclass.

Every figure comes from the postings: balances at an instant are the sums of the postings of entries created
before it, and each account's movements are its postings in the month grouped by the kind of their entry, so
opening + movements = closing holds per account by construction. Fills are the month's `trade` entries, with price
and fee from the matching context's trades (read through the app registry: portfolios does not import matching).
Renderers (CSV, PDF) are in `statement_files.py`.
"""
import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

from django.apps import apps
from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from .models import AMOUNT_QUANTUM, ZERO, JournalEntry, LedgerAccount, Posting
from .selectors import OWNED_CASH_KINDS

Kind = LedgerAccount.Kind
EntryKind = JournalEntry.Kind

# The columns of an account's movements, in the order a statement shows them; any other entry kind is "other".
MOVEMENT_KINDS: dict[str, tuple[str, ...]] = {
    "deposits": (EntryKind.DEPOSIT, EntryKind.DEPOSIT_SETTLE, EntryKind.DEPOSIT_FAIL),
    "withdrawals": (EntryKind.WITHDRAWAL, EntryKind.WITHDRAWAL_HOLD, EntryKind.WITHDRAWAL_RELEASE),
    "trades": (EntryKind.TRADE,),
    "order_holds": (EntryKind.CASH_RESERVE, EntryKind.CASH_RELEASE, EntryKind.SHARES_RESERVE,
                    EntryKind.SHARES_RELEASE),
    "adjustments": (EntryKind.ADJUSTMENT,),
}
MOVEMENT_COLUMNS = (*MOVEMENT_KINDS, "other")
_COLUMN_OF = {kind: column for column, kinds in MOVEMENT_KINDS.items() for kind in kinds}
CASH_KINDS = (Kind.CASH_AVAILABLE, Kind.CASH_RESERVED, Kind.CASH_PENDING, Kind.CASH_HELD)
MONTH_FORMAT = re.compile(r"^(\d{4})-(\d{2})$")


class InvalidMonth(ValueError):
    """Not a month a statement can be made for: malformed (YYYY-MM expected) or not begun yet."""


@dataclass(frozen=True)
class AccountLine:
    """One of the client's ledger accounts over the month."""

    kind: str
    asset: str
    opening: Decimal
    movements: dict[str, Decimal]  # MOVEMENT_COLUMNS -> net postings in the month
    closing: Decimal


@dataclass(frozen=True)
class Holding:
    """Shares of one symbol at an instant; valued at the last trade before it, when there was one."""

    symbol: str
    shares: Decimal
    available: Decimal
    reserved: Decimal
    price: Decimal | None
    value: Decimal | None


@dataclass(frozen=True)
class Movement:
    """One posting of a deposit, withdrawal or adjustment entry on one of the client's accounts."""

    at: dt.datetime
    entry_id: int
    kind: str
    reference: str
    memo: str
    account: str
    asset: str
    amount: Decimal


@dataclass(frozen=True)
class Fill:
    """One of the client's fills: a trade entry, with the trade's price and the client's fee."""

    at: dt.datetime
    entry_id: int
    reference: str
    symbol: str
    side: str  # "buy" or "sell"
    qty: Decimal
    price: Decimal | None  # None only for a trade entry that names no matching trade
    fee: Decimal
    cash: Decimal  # net on the client's cash: -(notional + fee) for a buy, notional - fee for a sell


@dataclass(frozen=True)
class Statement:
    brokerage: str
    user_id: int
    email: str
    month: str  # YYYY-MM
    start: dt.datetime  # inclusive, UTC
    end: dt.datetime  # exclusive, UTC
    currency: str
    generated_at: dt.datetime
    accounts: list[AccountLine]
    opening_holdings: list[Holding]
    closing_holdings: list[Holding]
    deposits: list[Movement]
    withdrawals: list[Movement]
    adjustments: list[Movement]
    fills: list[Fill]
    fees_total: Decimal = field(default=ZERO)

    def cash(self, kind: str, *, closing: bool = True) -> Decimal:
        line = next((a for a in self.accounts if a.kind == kind and a.asset == self.currency), None)
        return ZERO if line is None else (line.closing if closing else line.opening)


def statement_month(text: str, *, now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) in UTC of the month `YYYY-MM`; InvalidMonth when malformed or not begun yet."""
    found = MONTH_FORMAT.match(text or "")
    if not found:
        raise InvalidMonth("The month must be written YYYY-MM, e.g. 2026-11.")
    year, month = int(found[1]), int(found[2])
    if not (1 <= month <= 12 and year >= 1970):
        raise InvalidMonth("No such month.")
    start = dt.datetime(year, month, 1, tzinfo=dt.UTC)
    end = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=dt.UTC)
    if start > (now or timezone.now()):
        raise InvalidMonth("That month has not begun yet.")
    return start, end


def recent_statement_months(*, now: dt.datetime | None = None) -> list[str]:
    """The current and the previous month (UTC), newest first, as `YYYY-MM`: what the pages offer to download."""
    today = (now or timezone.now()).astimezone(dt.UTC)
    previous = (today.replace(day=1) - dt.timedelta(days=1))
    return [f"{today:%Y-%m}", f"{previous:%Y-%m}"]


def statement_for_user(user, *, month: str, now: dt.datetime | None = None) -> Statement:
    """The user's statement of `month` (YYYY-MM, UTC). Reads only the user's own accounts; about eight queries."""
    start, end = statement_month(month, now=now)
    currency = getattr(settings, "LEDGER_CURRENCY", "USD")
    accounts = {pk: (kind, asset) for pk, kind, asset in
                LedgerAccount.objects.filter(owner=user).values_list("id", "kind", "asset")}
    mine = Posting.objects.filter(account__owner=user)
    opening = dict(mine.filter(entry__created_at__lt=start).values("account_id").annotate(total=Sum("amount"))
                   .values_list("account_id", "total"))
    moved: dict[int, dict[str, Decimal]] = defaultdict(lambda: dict.fromkeys(MOVEMENT_COLUMNS, ZERO))
    in_month = mine.filter(entry__created_at__gte=start, entry__created_at__lt=end)
    for account_id, entry_kind, total in (in_month.values("account_id", "entry__kind").annotate(total=Sum("amount"))
                                          .values_list("account_id", "entry__kind", "total")):
        moved[account_id][_COLUMN_OF.get(entry_kind, "other")] += total

    lines = []
    for pk, (kind, asset) in sorted(accounts.items(), key=lambda item: _account_order(*item[1], currency)):
        movements = moved.get(pk, dict.fromkeys(MOVEMENT_COLUMNS, ZERO))
        first = opening.get(pk, ZERO)
        last = first + sum(movements.values(), ZERO)
        if kind not in CASH_KINDS and not (first or last or any(movements.values())):
            continue
        lines.append(AccountLine(kind=kind, asset=asset, opening=first, movements=movements, closing=last))

    listed = (in_month.filter(entry__kind__in=[*MOVEMENT_KINDS["deposits"], *MOVEMENT_KINDS["withdrawals"],
                                               *MOVEMENT_KINDS["adjustments"], EntryKind.TRADE])
              .order_by("entry__created_at", "entry_id", "id")
              .values_list("entry_id", "entry__created_at", "entry__kind", "entry__reference", "entry__memo",
                           "account__kind", "account__asset", "amount"))
    movements = [Movement(at, entry_id, kind, reference, memo, account, asset, amount)
                 for entry_id, at, kind, reference, memo, account, asset, amount in listed]
    fills = _fills([m for m in movements if m.kind == EntryKind.TRADE])
    return Statement(
        brokerage=getattr(settings, "BROKERAGE_NAME", "BrokerX"), user_id=user.pk, email=user.email, month=month,
        start=start, end=end, currency=currency, generated_at=now or timezone.now(), accounts=lines,
        opening_holdings=_holdings(lines, at=start, closing=False),
        closing_holdings=_holdings(lines, at=min(end, now or timezone.now()), closing=True),
        deposits=[m for m in movements if m.kind in MOVEMENT_KINDS["deposits"]],
        withdrawals=[m for m in movements if m.kind in MOVEMENT_KINDS["withdrawals"]],
        adjustments=[m for m in movements if m.kind in MOVEMENT_KINDS["adjustments"]],
        fills=fills, fees_total=sum((f.fee for f in fills), ZERO),
    )


def _account_order(kind: str, asset: str, currency: str) -> tuple:
    """Cash first (in CASH_KINDS order), then securities by symbol, available before reserved."""
    if kind in CASH_KINDS:
        return (0, asset != currency, asset, CASH_KINDS.index(kind))
    return (1, asset, kind != Kind.SECURITIES_AVAILABLE, kind)


def _holdings(lines: list[AccountLine], *, at: dt.datetime, closing: bool) -> list[Holding]:
    shares: dict[str, dict[str, Decimal]] = defaultdict(lambda: {"available": ZERO, "reserved": ZERO})
    for line in lines:
        if line.kind in LedgerAccount.CLIENT_SECURITIES_KINDS:
            side = "available" if line.kind == Kind.SECURITIES_AVAILABLE else "reserved"
            shares[line.asset][side] += line.closing if closing else line.opening
    held = {symbol: qty for symbol, qty in shares.items() if qty["available"] or qty["reserved"]}
    prices = last_trade_prices(list(held), before=at)
    result = []
    for symbol in sorted(held):
        qty = held[symbol]["available"] + held[symbol]["reserved"]
        price = prices.get(symbol)
        result.append(Holding(symbol=symbol, shares=qty, available=held[symbol]["available"],
                              reserved=held[symbol]["reserved"], price=price,
                              value=None if price is None else (qty * price).quantize(AMOUNT_QUANTUM, ROUND_HALF_EVEN)))
    return result


def last_trade_prices(symbols: list[str], *, before: dt.datetime) -> dict[str, Decimal]:
    """Each symbol's last trade price strictly before `before` (symbols never traded by then are left out)."""
    if not symbols:
        return {}
    trade = _trade_model()
    if trade is None:
        return {}
    rows = (trade.objects.filter(symbol__in=symbols, executed_at__lt=before)
            .order_by("symbol", "-executed_at", "-id").distinct("symbol").values_list("symbol", "price"))
    return dict(rows)


def _trade_model():
    try:
        return apps.get_model("matching", "Trade")
    except LookupError:
        return None


def _fills(legs: list[Movement]) -> list[Fill]:
    """One fill per trade entry from the client's legs of it; price and fee from the trade its reference names."""
    entries: dict[int, list[Movement]] = {}
    for leg in legs:
        entries.setdefault(leg.entry_id, []).append(leg)
    trade_ids = {_trade_id(ls[0].reference) for ls in entries.values()} - {None}
    trade = _trade_model()
    trades = ({t.pk: t for t in trade.objects.filter(pk__in=trade_ids)} if trade is not None and trade_ids else {})
    fills = []
    for entry_id, entry_legs in entries.items():
        first = entry_legs[0]
        cash = sum((leg.amount for leg in entry_legs if leg.account in OWNED_CASH_KINDS), ZERO)
        shares = [leg for leg in entry_legs if leg.account in LedgerAccount.CLIENT_SECURITIES_KINDS]
        qty = sum((leg.amount for leg in shares), ZERO)
        if not shares or not qty:
            continue  # the client was both buyer and seller: no shares moved, nothing to report as a fill
        side = "buy" if qty > 0 else "sell"
        ref = first.reference
        matched = trades.get(_trade_id(ref))
        if matched is not None:
            price = matched.price
            fee = matched.buyer_fee if side == "buy" else matched.seller_fee
        else:
            price, fee = None, ZERO
        fills.append(Fill(at=first.at, entry_id=entry_id, reference=ref, symbol=shares[0].asset, side=side,
                          qty=abs(qty), price=price, fee=fee, cash=cash))
    return fills


def _trade_id(reference: str) -> int | None:
    """The matching trade a trade entry settles (`trade:<id>`, portfolios/settlement.py's callers)."""
    prefix, _, rest = reference.partition(":")
    return int(rest) if prefix == "trade" and rest.isdigit() else None
