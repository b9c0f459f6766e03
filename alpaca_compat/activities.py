"""Alpaca's account activities, read from BrokerX's records: fills and their fees from the execution reports,
cash and share movements from the ledger. One ordered stream, paged by an activity id that is its own cursor."""
import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Q

from notifications.models import ExecType, ExecutionReport
from portfolios.models import JournalEntry
from portfolios.selectors import ledger_movements_for_user

from . import ids
from .errors import invalid

# Alpaca's activity types (its vocabulary; BrokerX makes the first six, the rest are valid filters that find nothing).
PRODUCED_TYPES = ("FILL", "FEE", "CSD", "CSW", "JNLC", "JNLS")
ACTIVITY_TYPES = PRODUCED_TYPES + (
    "ACATC", "ACATS", "CFEE", "CIL", "DIV", "DIVCGL", "DIVCGS", "DIVNRA", "DIVROC", "DIVTXEX", "DIVWH", "EXTRD",
    "FXTRD", "INT", "INTPNL", "MA", "MEM", "NC", "OCT", "OPASN", "OPCSH", "OPEXC", "OPEXP", "OPTRD", "PTC", "REORG",
    "SPIN", "SPLIT", "SWP", "VOF", "WH")
MAX_PAGE_SIZE = 100

# Each activity's place in the stream is (time, n): n is the source row's id times 4 plus the source, so two
# activities never share a key and a key names its row. Sources:
_LEDGER, _FILL, _FEE = 0, 1, 2
_LEDGER_KINDS = {JournalEntry.Kind.DEPOSIT_SETTLE: "CSD", JournalEntry.Kind.WITHDRAWAL: "CSW",
                 JournalEntry.Kind.ADJUSTMENT: "JNL"}
_BATCH = MAX_PAGE_SIZE + 1


@dataclass(frozen=True, order=True)
class Key:
    at: datetime
    n: int

    def token(self) -> str:
        """The activity id: Alpaca's "<date and time>::<uuid>" form, here to the microsecond."""
        return f"{self.at.astimezone(UTC):%Y%m%d%H%M%S%f}::{ids.encode_str(ids.Kind.ACTIVITY, self.n + 1)}"

    @classmethod
    def parse(cls, token: str) -> "Key":
        moment, _, uuid = (token or "").partition("::")
        n = ids.decode(ids.Kind.ACTIVITY, uuid)
        try:
            at = datetime.strptime(moment, "%Y%m%d%H%M%S%f").replace(tzinfo=UTC)
        except ValueError:
            at = None
        if n is None or at is None:
            raise invalid(f"invalid page_token: {token}")
        return cls(at, n - 1)

    def source_after(self, source: int) -> int:
        """The last row id of `source` at or before this key at the same instant (for the keyset condition)."""
        return (self.n - source) // 4


def _fills(user, *, key: Key | None, ascending: bool, since, until, fees: bool) -> Iterator[tuple[Key, dict]]:
    source = _FEE if fees else _FILL
    query = ExecutionReport.objects.filter(user=user, exec_type=ExecType.TRADE)
    if fees:
        query = query.filter(fee__gt=0)
    if since:
        query = query.filter(created_at__gte=since)
    if until:
        query = query.filter(created_at__lt=until)
    order = ("created_at", "id") if ascending else ("-created_at", "-id")
    while True:
        page = query
        if key is not None:
            last = key.source_after(source)
            if ascending:
                page = page.filter(Q(created_at__gt=key.at) | Q(created_at=key.at, id__gt=last))
            else:
                # At the cursor's own instant, rows whose key is below it: id*4+source < n.
                below = (key.n - source - 1) // 4
                page = page.filter(Q(created_at__lt=key.at) | Q(created_at=key.at, id__lte=below))
        rows = list(page.order_by(*order)[:_BATCH])
        for report in rows:
            key = Key(report.created_at, report.pk * 4 + source)
            yield key, (_fee_json(report) if fees else _fill_json(report))
        if len(rows) < _BATCH:
            return


def _ledger(user, *, key: Key | None, ascending: bool, since, until) -> Iterator[tuple[Key, dict]]:
    while True:
        after = None
        if key is not None:
            # Ascending: entries with id*4 > n; descending: id*4 < n (the selector's bound is exclusive).
            last = key.source_after(_LEDGER) if ascending else (key.n - _LEDGER - 1) // 4 + 1
            after = (key.at, last)
        rows = ledger_movements_for_user(user, kinds=list(_LEDGER_KINDS), after=after, ascending=ascending,
                                         since=since, until=until, limit=_BATCH)
        for row in rows:
            key = Key(row["created_at"], row["entry_id"] * 4 + _LEDGER)
            yield key, _movement_json(row)
        if len(rows) < _BATCH:
            return


def _fill_json(report: ExecutionReport) -> dict:
    return {"activity_type": "FILL", "transaction_time": report.created_at,
            "type": "fill" if report.leaves_qty == 0 else "partial_fill", "price": report.last_px,
            "qty": report.last_qty, "side": report.side, "symbol": report.symbol, "leaves_qty": report.leaves_qty,
            "cum_qty": report.cum_qty, "order_id": ids.encode_str(ids.Kind.ORDER, report.order_id),
            "order_status": report.order_status}


def _fee_json(report: ExecutionReport) -> dict:
    return {"activity_type": "FEE", "date": report.created_at, "net_amount": -report.fee,
            "description": f"trading fee, order {ids.encode_str(ids.Kind.ORDER, report.order_id)}",
            "status": "executed", "symbol": report.symbol, "qty": report.last_qty, "price": report.last_px}


def _movement_json(row: dict) -> dict:
    kind = _LEDGER_KINDS[row["kind"]]
    symbol = qty = None
    if kind == "JNL":
        kind = "JNLC" if row["cash"] or not row["securities"] else "JNLS"
        if kind == "JNLS":
            symbol, qty = next(iter(row["securities"].items()))
    return {"activity_type": kind, "date": row["created_at"], "net_amount": row["cash"],
            "description": row["memo"] or {"CSD": "deposit", "CSW": "withdrawal"}.get(kind, "journal"),
            "status": "executed", "symbol": symbol, "qty": qty}


def activities_for_user(user, *, types: set[str] | None = None, page_size: int = MAX_PAGE_SIZE,
                        direction: str = "desc", page_token: str | None = None, since: datetime | None = None,
                        until: datetime | None = None) -> list[tuple[str, dict]]:
    """(activity id, fields) of the user's activities of `types` (all when None), newest first unless asc."""
    ascending = direction == "asc"
    key = Key.parse(page_token) if page_token else None
    wanted = set(PRODUCED_TYPES) if types is None else types & set(PRODUCED_TYPES)
    streams = []
    if "FILL" in wanted:
        streams.append(_fills(user, key=key, ascending=ascending, since=since, until=until, fees=False))
    if "FEE" in wanted:
        streams.append(_fills(user, key=key, ascending=ascending, since=since, until=until, fees=True))
    if wanted & {"CSD", "CSW", "JNLC", "JNLS"}:
        streams.append(_ledger(user, key=key, ascending=ascending, since=since, until=until))
    page = []
    for activity_key, fields in heapq.merge(*streams, key=lambda item: item[0], reverse=not ascending):
        if fields["activity_type"] in wanted:
            page.append((activity_key.token(), fields))
            if len(page) >= page_size:
                break
    return page
