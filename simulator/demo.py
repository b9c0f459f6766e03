"""Demo data of the market simulator: its bot accounts and their inventory, and a funded demo trader."""
from django.contrib.auth import get_user_model

from brokerx.demo_users import DEMO_TRADER_EMAIL
from orders.models import Instrument

from .services import (
    BOT_CASH,
    BOT_LOTS,
    FLOW_TRADER_EMAIL,
    MARKET_MAKER_EMAIL,
    TRADER_CASH,
    TRADER_LOTS,
    bot_user,
    inventory_top_up,
)


def seed_demo(stdout) -> None:
    """Idempotent: bots are topped up only when below half their inventory; the demo trader is funded once."""
    instruments = list(Instrument.objects.filter(is_tradable=True).order_by("symbol"))
    if not instruments:
        stdout.write("market simulator: no instruments, nothing to fund")
        return
    posted = 0
    for email, name in ((MARKET_MAKER_EMAIL, "Market maker"), (FLOW_TRADER_EMAIL, "Flow trader")):
        posted += inventory_top_up(user=bot_user(email, name=name), symbols=instruments, cash=BOT_CASH, lots=BOT_LOTS)
    trader = get_user_model().objects.filter(email=DEMO_TRADER_EMAIL).first()
    if trader is not None:
        posted += inventory_top_up(user=trader, symbols=instruments, cash=TRADER_CASH, lots=TRADER_LOTS,
                                   only_if_new=True)
    stdout.write(f"market simulator: bots {MARKET_MAKER_EMAIL}, {FLOW_TRADER_EMAIL}; {posted} inventory "
                 f"adjustment(s) posted against house clearing (on with BROKERX_SIMULATOR=1, "
                 f"or run `manage.py simulate_market`)")
