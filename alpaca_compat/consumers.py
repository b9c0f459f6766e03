"""The `trade_updates` stream at /stream in Alpaca's protocol: authenticate, listen, then one message per execution.

Execution reports reach the consumer through the user's Channels group (`orders.user.<id>`, message type
`execution.report`); each is turned into Alpaca's trade update. Delivery is at most once, like every push here:
a client that reconnects re-reads its orders over REST.
"""
import asyncio
import contextlib
import json
import logging
import uuid
from decimal import Decimal, InvalidOperation

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from accounts.errors import AccountsError
from accounts.realtime import CredentialBoundMixin
from accounts.services import api_key_authenticate
from orders.selectors import instrument_get
from portfolios.models import Position

from .api import representations as rep

STREAM = "trade_updates"
AUTH_TIMEOUT_SECONDS = 10  # a socket that has not authenticated by then is closed, as Alpaca does
# Native exec types -> Alpaca events; a stop trigger has no Alpaca event and is not forwarded.
EVENTS = {"new": "new", "canceled": "canceled", "replaced": "replaced", "rejected": "rejected", "expired": "expired"}
_EXECUTION_NAMESPACE = uuid.UUID("6f1c2a0e-5b7d-4c1e-9a53-0b0d00000004")
logger = logging.getLogger(__name__)


def user_group(user_id: int) -> str:
    return f"orders.user.{user_id}"


def trade_event(report: dict) -> str | None:
    exec_type = report.get("exec_type")
    if exec_type == "trade":
        try:
            leaves = Decimal(str(report.get("leaves_qty") or "0"))
        except InvalidOperation:
            leaves = Decimal("0")
        return "partial_fill" if leaves > 0 else "fill"
    return EVENTS.get(exec_type)


def trade_update(report: dict, *, asset_id: int | None, position_qty) -> dict | None:
    """The `data` of a trade_updates message for one execution report, or None if Alpaca has no such event."""
    event = trade_event(report)
    if event is None:
        return None
    native = dict(report.get("order") or {})
    native.setdefault("id", report.get("order_id"))
    native["status"] = report.get("order_status") or native.get("status")
    native["cum_qty"] = report.get("cum_qty", native.get("cum_qty"))
    native["avg_px"] = report.get("avg_px", native.get("avg_px"))
    data = {"event": event, "order": rep.order_json(native, asset_id=asset_id),
            "timestamp": rep.timestamp(report.get("timestamp") or native.get("updated_at"))}
    if event in ("fill", "partial_fill"):
        data.update({
            "price": rep.num(report.get("last_px")),
            "qty": rep.num(report.get("last_qty")),
            "position_qty": rep.num(position_qty),
            "execution_id": str(uuid.uuid5(_EXECUTION_NAMESPACE, f"{native['id']}:{report.get('seq')}")),
        })
    return data


class TradeUpdatesConsumer(CredentialBoundMixin, AsyncWebsocketConsumer):
    """One client: `authenticate` with an API key (any scope), then `listen` to trade_updates."""

    user = None
    group = None
    _auth_deadline: asyncio.Task | None = None

    async def connect(self):
        self._asset_ids: dict[str, int | None] = {}
        await self.accept()
        self._auth_deadline = asyncio.create_task(self._close_unless_authenticated())

    async def disconnect(self, code):
        if self._auth_deadline is not None:
            self._auth_deadline.cancel()
        await self.unbind_credentials()
        await self._leave()

    async def _close_unless_authenticated(self) -> None:
        await asyncio.sleep(AUTH_TIMEOUT_SECONDS)
        if self.user is None:
            with contextlib.suppress(Exception):  # the client may be gone already
                await self._send({"stream": "authorization",
                                  "data": {"action": "authenticate", "status": "unauthorized"}})
                await self.close(code=1008)

    async def receive(self, text_data=None, bytes_data=None):
        try:
            message = json.loads(text_data if text_data is not None else bytes_data)
        except (TypeError, ValueError):
            await self._send({"stream": "error", "data": {"error_message": "invalid syntax"}})
            return
        if not isinstance(message, dict):
            await self._send({"stream": "error", "data": {"error_message": "invalid syntax"}})
            return
        action = message.get("action")
        if action in ("authenticate", "auth"):
            await self._authenticate(message)
        elif action == "listen":
            await self._listen(message)
        else:
            await self._send({"stream": "error", "data": {"error_message": f"unknown action: {action}"}})

    async def _authenticate(self, message: dict) -> None:
        # The SDK sends {"action": "authenticate", "data": {"key_id", "secret_key"}}; {"action": "auth", "key",
        # "secret"} (the market data streams' form) is accepted too.
        data = message.get("data") if isinstance(message.get("data"), dict) else message
        key_id = str(data.get("key_id") or data.get("key") or "")
        secret = str(data.get("secret_key") or data.get("secret") or "")
        user, api_key = await _authenticate(key_id, secret)
        if user is None or not await self.bind_credentials(user_id=user.pk, auth=api_key):
            await self._send({"stream": "authorization", "data": {"action": "authenticate", "status": "unauthorized"}})
            await self.close(code=1008)
            return
        await self._leave()
        self.user = user
        await self._send({"stream": "authorization", "data": {"action": "authenticate", "status": "authorized"}})

    async def _listen(self, message: dict) -> None:
        if self.user is None:
            await self._send({"stream": "authorization", "data": {"action": "listen", "status": "unauthorized"}})
            await self.close(code=1008)
            return
        data = message.get("data") if isinstance(message.get("data"), dict) else {}
        streams = data.get("streams") if isinstance(data.get("streams"), list) else []
        if STREAM in streams:
            if self.group is None:
                self.group = user_group(self.user.pk)
                await self.channel_layer.group_add(self.group, self.channel_name)
        else:
            await self._leave()
        await self._send({"stream": "listening", "data": {"streams": [STREAM] if self.group else []}})

    async def _leave(self) -> None:
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None

    async def execution_report(self, event):
        report = event.get("report") or {}
        if trade_event(report) is None:
            return
        symbol = report.get("symbol") or (report.get("order") or {}).get("symbol") or ""
        asset_id, position_qty = await self._context(symbol, report.get("exec_type") == "trade")
        try:
            data = trade_update(report, asset_id=asset_id, position_qty=position_qty)
        except (KeyError, TypeError, ValueError):
            # A malformed report must not end the client's stream; the database keeps the truth.
            logger.exception("alpaca: execution report not convertible", extra={"seq": report.get("seq")})
            return
        if data is not None:
            await self._send({"stream": STREAM, "data": data})

    async def credentials_revoked(self):
        """The API key it authenticated with was revoked, or the account locked."""
        await self.close(code=1008)

    async def _context(self, symbol: str, with_position: bool):
        if symbol in self._asset_ids and not with_position:
            return self._asset_ids[symbol], None
        asset_id, position_qty = await _asset_and_position(self.user.pk, symbol, with_position)
        self._asset_ids[symbol] = asset_id
        return asset_id, position_qty

    async def _send(self, message: dict) -> None:
        await self.send(text_data=json.dumps(message))


@database_sync_to_async
def _authenticate(key_id: str, secret: str):
    try:
        return api_key_authenticate(key_id=key_id, secret=secret)
    except AccountsError:
        return None, None


@database_sync_to_async
def _asset_and_position(user_id: int, symbol: str, with_position: bool):
    instrument = instrument_get(symbol) if symbol else None
    position_qty = None
    if with_position:
        # The position now, which is the position after this fill unless another fill has landed since.
        position_qty = Position.objects.filter(user_id=user_id, symbol=symbol).values_list("qty", flat=True).first()
        position_qty = position_qty if position_qty is not None else Decimal("0")
    return (instrument["id"] if instrument else None), position_qty
