"""Writes of the watchlists context: create, rename or replace, add and remove a symbol, delete.

Each write is one transaction holding the watchlist's row lock (creation holds the owner's advisory lock), so
concurrent changes of one list apply one after the other and the limits below hold.
"""
from collections.abc import Iterable

from django.db import IntegrityError, connection, transaction

from orders.models import Instrument

from .errors import WatchlistInvalid, WatchlistNotFound
from .locks import lock_watchlist
from .models import MAX_NAME_LENGTH, Watchlist, WatchlistItem
from .selectors import watchlist_for_user

MAX_WATCHLISTS_PER_USER = 100
MAX_SYMBOLS_PER_WATCHLIST = 500
_CREATE_LOCK_SPACE = 0x5741  # advisory lock namespace of watchlist creation, one key per user


def _name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise WatchlistInvalid("name must not be blank", details={"name": name})
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise WatchlistInvalid(f"name must be at most {MAX_NAME_LENGTH} characters", details={"name": name})
    if "\x00" in name:
        raise WatchlistInvalid("name must not contain a NUL character")
    return name


def _instruments(symbols: Iterable[str]) -> list[Instrument]:
    """The instruments of `symbols` in the given order; unknown or repeated symbols are refused."""
    wanted = []
    for symbol in symbols:
        if not isinstance(symbol, str) or not symbol.strip():
            raise WatchlistInvalid("symbols must be non-blank strings", details={"symbol": symbol})
        wanted.append(symbol.strip().upper())
    if len(wanted) > MAX_SYMBOLS_PER_WATCHLIST:
        raise WatchlistInvalid(f"at most {MAX_SYMBOLS_PER_WATCHLIST} symbols per watchlist")
    repeated = sorted({s for s in wanted if wanted.count(s) > 1})
    if repeated:
        raise WatchlistInvalid(f"symbol listed twice: {', '.join(repeated)}", details={"symbols": repeated})
    found = {i.symbol: i for i in Instrument.objects.filter(symbol__in=wanted)}
    unknown = [s for s in wanted if s not in found]
    if unknown:
        raise WatchlistInvalid(f"asset not found: {', '.join(unknown)}", details={"symbols": unknown})
    return [found[s] for s in wanted]


def _save_name(watchlist: Watchlist, name: str, *, update_fields: list[str] | None = None) -> None:
    try:
        with transaction.atomic():
            watchlist.save(update_fields=update_fields)
    except IntegrityError as exc:
        raise WatchlistInvalid(f'a watchlist named "{name}" already exists', details={"name": name}) from exc


def _replace_items(watchlist: Watchlist, instruments: list[Instrument]) -> None:
    WatchlistItem.objects.filter(watchlist=watchlist).delete()
    WatchlistItem.objects.bulk_create([WatchlistItem(watchlist=watchlist, instrument=instrument, rank=rank)
                                       for rank, instrument in enumerate(instruments, start=1)])


def _locked(user, watchlist_id: int) -> Watchlist:
    watchlist = lock_watchlist(user=user, watchlist_id=watchlist_id)
    if watchlist is None:
        raise WatchlistNotFound("watchlist not found")
    return watchlist


def watchlist_create(*, user, name: str, symbols: Iterable[str] = ()) -> Watchlist:
    name = _name(name)
    with transaction.atomic():
        instruments = _instruments(symbols)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_CREATE_LOCK_SPACE, user.pk])
        if Watchlist.objects.filter(user=user).count() >= MAX_WATCHLISTS_PER_USER:
            raise WatchlistInvalid(f"at most {MAX_WATCHLISTS_PER_USER} watchlists per account")
        watchlist = Watchlist(user=user, name=name)
        _save_name(watchlist, name)
        _replace_items(watchlist, instruments)
    return watchlist_for_user(user, watchlist.pk)


def watchlist_update(*, user, watchlist_id: int, name: str | None = None,
                     symbols: Iterable[str] | None = None) -> Watchlist:
    """Rename and/or replace the symbols (in the given order); what is not given stays."""
    if name is None and symbols is None:
        raise WatchlistInvalid("give name or symbols")
    new_name = _name(name) if name is not None else None
    with transaction.atomic():
        watchlist = _locked(user, watchlist_id)
        instruments = _instruments(symbols) if symbols is not None else None
        if new_name is not None:
            watchlist.name = new_name
        _save_name(watchlist, watchlist.name, update_fields=["name", "updated_at"])
        if instruments is not None:
            _replace_items(watchlist, instruments)
    return watchlist_for_user(user, watchlist_id)


def watchlist_symbol_add(*, user, watchlist_id: int, symbol: str) -> Watchlist:
    """Append a symbol at the end of the list."""
    with transaction.atomic():
        watchlist = _locked(user, watchlist_id)
        [instrument] = _instruments([symbol])
        items = list(WatchlistItem.objects.filter(watchlist=watchlist).values_list("instrument_id", "rank"))
        if any(instrument_id == instrument.pk for instrument_id, _ in items):
            raise WatchlistInvalid(f"{instrument.symbol} is already in this watchlist",
                                   details={"symbol": instrument.symbol})
        if len(items) >= MAX_SYMBOLS_PER_WATCHLIST:
            raise WatchlistInvalid(f"at most {MAX_SYMBOLS_PER_WATCHLIST} symbols per watchlist")
        WatchlistItem.objects.create(watchlist=watchlist, instrument=instrument,
                                     rank=max((rank for _, rank in items), default=0) + 1)
        watchlist.save(update_fields=["updated_at"])
    return watchlist_for_user(user, watchlist_id)


def watchlist_symbol_remove(*, user, watchlist_id: int, symbol: str) -> Watchlist:
    with transaction.atomic():
        watchlist = _locked(user, watchlist_id)
        removed, _ = WatchlistItem.objects.filter(watchlist=watchlist,
                                                  instrument__symbol=str(symbol).strip().upper()).delete()
        if not removed:
            raise WatchlistNotFound(f"{symbol} is not in this watchlist", details={"symbol": symbol})
        watchlist.save(update_fields=["updated_at"])
    return watchlist_for_user(user, watchlist_id)


def watchlist_delete(*, user, watchlist_id: int) -> None:
    with transaction.atomic():
        _locked(user, watchlist_id).delete()
