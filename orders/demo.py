"""Demo instruments (idempotent)."""
from decimal import Decimal

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
    for symbol, name, price in DEMO_INSTRUMENTS:
        _, was_created = Instrument.objects.get_or_create(
            symbol=symbol, defaults={"name": name, "reference_price": Decimal(price), "last_price": Decimal(price)})
        created += was_created
    stdout.write(f"instruments: {created} created, {len(DEMO_INSTRUMENTS) - created} already there")
