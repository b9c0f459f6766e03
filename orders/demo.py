"""Demo instruments (idempotent)."""
from decimal import Decimal

from django.db import models, transaction
from django.utils import timezone

from .calendar import last_session_close
from .models import Instrument
from .selectors import instrument_cache_invalidate

# (symbol, name, price, lot size): a lot below 1 makes the instrument fractionable (fractional and notional orders).
DEMO_INSTRUMENTS = [
    ("AAPL", "Apple Inc.", "189.50", "0.001"),
    ("MSFT", "Microsoft Corporation", "415.20", "0.001"),
    ("GOOGL", "Alphabet Inc. Class A", "171.30", "1"),
    ("AMZN", "Amazon.com, Inc.", "182.75", "1"),
    ("TSLA", "Tesla, Inc.", "243.10", "1"),
    ("NVDA", "NVIDIA Corporation", "131.60", "0.0001"),
]


def seed_demo(stdout) -> None:
    created = 0
    # The demo starts as if the last session closed at the seed price, so positions show a change on the day.
    close = last_session_close()
    close_day = timezone.localtime(close).date() if close else None
    for symbol, name, price, lot in DEMO_INSTRUMENTS:
        _, was_created = Instrument.objects.get_or_create(
            symbol=symbol, defaults={"name": name, "reference_price": Decimal(price), "last_price": Decimal(price),
                                     "previous_close": Decimal(price), "previous_close_date": close_day,
                                     "lot_size": Decimal(lot)})
        created += was_created
        if not was_created and Decimal(lot) < 1:
            _fractionable(symbol, Decimal(lot))
    Instrument.objects.filter(symbol__in=[s for s, *_ in DEMO_INSTRUMENTS], previous_close__isnull=True).update(
        previous_close=models.F("reference_price"), previous_close_date=close_day)
    stdout.write(f"instruments: {created} created, {len(DEMO_INSTRUMENTS) - created} already there")


def _fractionable(symbol: str, lot: Decimal) -> None:
    """A demo seeded before its instruments were fractionable gets their finer lot: only from the old whole share,
    which the finer lot divides, so every existing order and position stays on the grid (matching rebuilds a book
    whose grid changed)."""
    with transaction.atomic():
        if Instrument.objects.filter(symbol=symbol, lot_size=Decimal("1")).update(lot_size=lot,
                                                                                  updated_at=timezone.now()):
            transaction.on_commit(lambda: instrument_cache_invalidate(symbol))
