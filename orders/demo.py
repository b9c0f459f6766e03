"""Demo instruments (idempotent)."""
from decimal import Decimal

from django.db import models
from django.utils import timezone

from .calendar import last_session_close
from .models import Instrument

DEMO_INSTRUMENTS = [
    ("AAPL", "Apple Inc.", "189.50"),
    ("MSFT", "Microsoft Corporation", "415.20"),
    ("GOOGL", "Alphabet Inc. Class A", "171.30"),
    ("AMZN", "Amazon.com, Inc.", "182.75"),
    ("TSLA", "Tesla, Inc.", "243.10"),
    ("NVDA", "NVIDIA Corporation", "131.60"),
]


def seed_demo(stdout) -> None:
    created = 0
    # The demo starts as if the last session closed at the seed price, so positions show a change on the day.
    close = last_session_close()
    close_day = timezone.localtime(close).date() if close else None
    for symbol, name, price in DEMO_INSTRUMENTS:
        _, was_created = Instrument.objects.get_or_create(
            symbol=symbol, defaults={"name": name, "reference_price": Decimal(price), "last_price": Decimal(price),
                                     "previous_close": Decimal(price), "previous_close_date": close_day})
        created += was_created
    Instrument.objects.filter(symbol__in=[s for s, _, _ in DEMO_INSTRUMENTS], previous_close__isnull=True).update(
        previous_close=models.F("reference_price"), previous_close_date=close_day)
    stdout.write(f"instruments: {created} created, {len(DEMO_INSTRUMENTS) - created} already there")
