"""Helpers of the security sweep: the URL map walked route by route, and two traders, A with objects, B without."""
import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from accounts.services import api_key_create, jwt_issue
from alpaca_compat import ids
from notifications.services import notification_create
from orders.models import Order

# Markers only A's objects carry: none of them may appear in anything B is shown.
A_CLIENT_ORDER_ID = "alice-private-1"
A_DEPOSIT = "1234.56"
A_WITHDRAWAL = "654.32"
A_NOTIFICATION_TITLE = "Alice private notice"
A_WATCHLIST_NAME = "alice-private-watchlist"

SAFE_METHODS = ("get", "head", "options", "trace")


def routes():
    """(path pattern, route name, view callback) of every URL the project serves, namespaces included."""

    def walk(patterns, prefix: str, namespace: str | None):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                inner = ":".join(n for n in (namespace, entry.namespace) if n) or None
                yield from walk(entry.url_patterns, prefix + str(entry.pattern), inner)
            elif isinstance(entry, URLPattern):
                name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
                yield prefix + str(entry.pattern), name, entry.callback

    return list(walk(get_resolver().url_patterns, "", None))


def api_routes():
    """The routes of the two API surfaces, /api/v1/ and /v2/."""
    return [(path, name, view) for path, name, view in routes()
            if path.startswith("api/v1/") or path.lstrip("^").startswith("v2/")]


def has_path_parameter(path: str) -> bool:
    return "<" in path or "(?P" in path


def write_methods(view) -> list[str]:
    """The unsafe HTTP methods a class-based view implements (DRF and Django views keep their class on the view)."""
    cls = getattr(view, "cls", None) or getattr(view, "view_class", None)
    if cls is None:
        return []
    return sorted(m.upper() for m in cls.http_method_names if m not in SAFE_METHODS and hasattr(cls, m))


def alpaca_headers(key_id: str, secret: str) -> dict:
    return {"HTTP_APCA_API_KEY_ID": key_id, "HTTP_APCA_API_SECRET_KEY": secret}


def api_key_header(key_id: str, secret: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"ApiKey {key_id}:{secret}"}


class Party:
    """A trader with a JWT, a trade-scoped and a read-scoped API key, and clients that use them."""

    def __init__(self, user):
        self.user = user
        self.access = jwt_issue(user=user)["access"]
        trade = api_key_create(user=user, name="trade-bot", scope="trade")
        read = api_key_create(user=user, name="read-bot", scope="read")
        self.trade_key = (trade.api_key.key_id, trade.secret)
        self.read_key = (read.api_key.key_id, read.secret)

    def client(self, credentials: str = "jwt") -> APIClient:
        client = APIClient()
        if credentials == "jwt":
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.access}")
        elif credentials == "trade_key":
            client.credentials(**api_key_header(*self.trade_key))
        elif credentials == "read_key":
            client.credentials(**api_key_header(*self.read_key))
        else:
            raise ValueError(credentials)
        return client

    def alpaca(self, scope: str = "trade") -> APIClient:
        client = APIClient()
        client.credentials(**alpaca_headers(*(self.trade_key if scope == "trade" else self.read_key)))
        return client


@pytest.fixture
def alice(instrument, make_trader):
    """Trader A: cash, 20 ACME shares, an open order, a deposit, a withdrawal, a notification, API keys, all made
    through the API where the API makes them."""
    party = Party(make_trader(cash="50000", shares={"ACME": "20"}))
    client = party.client()
    order = client.post("/api/v1/orders", {"symbol": "ACME", "side": "buy", "type": "limit", "time_in_force": "gtc",
                                           "qty": "3", "limit_price": "99.00",
                                           "client_order_id": A_CLIENT_ORDER_ID}, format="json")
    assert order.status_code == 201, order.content
    deposit = client.post("/api/v1/deposits", {"amount": A_DEPOSIT}, format="json", HTTP_IDEMPOTENCY_KEY="a-dep-1")
    assert deposit.status_code == 201, deposit.content
    withdrawal = client.post("/api/v1/withdrawals", {"amount": A_WITHDRAWAL}, format="json",
                             HTTP_IDEMPOTENCY_KEY="a-wd-1")
    assert withdrawal.status_code == 201, withdrawal.content
    party.order = Order.objects.get(pk=order.json()["id"])
    party.alpaca_order_id = ids.encode_str(ids.Kind.ORDER, party.order.pk)
    party.deposit_id = deposit.json()["id"]
    party.notification = notification_create(user_id=party.user.pk, kind="deposit", title=A_NOTIFICATION_TITLE)
    party.api_key_id = party.trade_key[0]
    watchlist = client.post("/api/v1/watchlists", {"name": A_WATCHLIST_NAME, "symbols": ["ACME"]}, format="json")
    assert watchlist.status_code == 201, watchlist.content
    party.watchlist_id = watchlist.json()["id"]
    party.alpaca_watchlist_id = ids.encode_str(ids.Kind.WATCHLIST, party.watchlist_id)
    return party


@pytest.fixture
def bob(make_trader):
    """Trader B: verified, some cash, no shares, no orders: everything he may do is his own."""
    return Party(make_trader(cash="1000"))


def snapshot() -> dict:
    """What a refused request must not have changed: every row of the business tables that A's objects live in."""
    from accounts.models import ApiKey
    from notifications.models import Notification, NotificationPreference
    from orders.models import OrderEvent
    from outbox.models import OutboxEvent
    from portfolios.models import Deposit, JournalEntry, Posting, Withdrawal
    from watchlists.models import Watchlist, WatchlistItem

    def rows(model, *exclude):
        fields = [f.attname for f in model._meta.concrete_fields if f.attname not in exclude]
        return list(model.objects.order_by("pk").values_list(*fields))

    return {
        "orders": rows(Order), "order events": rows(OrderEvent), "journal entries": JournalEntry.objects.count(),
        "postings": Posting.objects.count(), "outbox": OutboxEvent.objects.count(), "deposits": rows(Deposit),
        "withdrawals": rows(Withdrawal), "notifications": rows(Notification),
        "preferences": rows(NotificationPreference), "api keys": rows(ApiKey, "last_used_at"),
        "watchlists": rows(Watchlist), "watchlist items": rows(WatchlistItem),
    }


def assert_no_leak(response, *markers: str) -> None:
    body = response.content.decode(errors="replace")
    leaked = [m for m in markers if m in body]
    assert not leaked, f"{response.request['REQUEST_METHOD']} {response.request['PATH_INFO']} showed {leaked}: {body}"
