"""Demo money: the demo trader starts with cash and a few shares, posted as staff adjustments (idempotent)."""
from decimal import Decimal

from django.contrib.auth import get_user_model

from brokerx.demo_users import DEMO_STAFF_EMAIL, DEMO_TRADER_EMAIL

from .models import JournalEntry, LedgerAccount
from .services import adjustment_post

DEMO_MEMO = "Demo opening balance"
DEMO_CASH = Decimal("100000")
DEMO_SHARES = [("AAPL", Decimal("50"), Decimal("180")), ("MSFT", Decimal("20"), Decimal("400"))]


def seed_demo(stdout) -> None:
    User = get_user_model()
    staff = User.objects.filter(email=DEMO_STAFF_EMAIL).first()
    trader = User.objects.filter(email=DEMO_TRADER_EMAIL).first()
    if staff is None or trader is None:
        return
    if JournalEntry.objects.filter(kind=JournalEntry.Kind.ADJUSTMENT, memo=DEMO_MEMO,
                                   postings__account__owner=trader).exists():
        stdout.write("demo trader already funded")
        return
    adjustment_post(staff_user=staff, user=trader, kind=LedgerAccount.Kind.CASH_AVAILABLE, asset="USD",
                    amount=DEMO_CASH, reason=DEMO_MEMO)
    for symbol, qty, cost in DEMO_SHARES:
        adjustment_post(staff_user=staff, user=trader, kind=LedgerAccount.Kind.SECURITIES_AVAILABLE, asset=symbol,
                        amount=qty, reason=DEMO_MEMO, unit_cost=cost)
    stdout.write(f"demo trader funded: {DEMO_CASH} USD and {', '.join(f'{q} {s}' for s, q, _ in DEMO_SHARES)}")
