"""The public market data stream /ws/market/: subscribe to symbols, get snapshots, then numbered updates."""
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from orders.selectors import instrument_get

from . import market

SYMBOL_MAX_LENGTH = 16


class MarketConsumer(AsyncJsonWebsocketConsumer):
    """Market data is public (like /api/v1/market/*): anyone may connect, signed in or not.

    Client -> server:
        {"action": "subscribe", "symbols": ["AAPL"], "streams": ["quote", "book", "trades", "bars"],
         "timeframe": "5Min"}
        {"action": "unsubscribe", "symbols": ["AAPL"]}          {"action": "ping"}
    `timeframe` (default 1Min; market.TIMEFRAMES or Alpaca's short forms) picks the candles of the bars stream;
    subscribing again to a symbol with another timeframe switches it (a new bars snapshot follows).
    Server -> client: "subscribed" (with each stream's current seq), then per stream a snapshot and updates:
    "quote", "book" (snapshot: true, then increments of changed levels, qty "0" = level removed), "trades",
    "bar" (the updated candle of the timeframe, current period). Each stream of each symbol is numbered 1, 2,
    3...: a jump means messages were lost, and the client re-syncs from
    /api/v1/market/<symbol>/<quote|book|trades|bars>, whose answers carry the seq they are current to.
    Messages also carry an `epoch`: if Redis loses the numbering it restarts at 1 under a new epoch (re-sync too).
    """

    async def connect(self):
        # {symbol: {stream: (epoch, last seq sent)}}: the streams subscribed to, and where each one stands.
        self.subscriptions: dict[str, dict[str, tuple]] = {}
        self.timeframes: dict[str, str] = {}  # {symbol: the bars stream's timeframe}
        await self.accept()
        await self.send_json({"type": "hello", "stream": "market", "streams": list(market.STREAMS),
                              "timeframes": list(market.TIMEFRAMES), "max_symbols": settings.MARKET_WS_MAX_SYMBOLS})

    async def disconnect(self, code):
        for symbol in list(getattr(self, "subscriptions", {})):
            await self.channel_layer.group_discard(market.market_group(symbol), self.channel_name)

    async def receive_json(self, content, **kwargs):
        if not isinstance(content, dict):
            await self._error("bad_request", "Send a JSON object with an action.")
            return
        action = content.get("action")
        if action == "ping":
            await self.send_json({"type": "pong"})
        elif action in ("subscribe", "unsubscribe"):
            symbols = content.get("symbols")
            if (not isinstance(symbols, list) or not symbols
                    or not all(isinstance(s, str) and 0 < len(s) <= SYMBOL_MAX_LENGTH for s in symbols)):
                await self._error("bad_request", "symbols must be a non-empty list of symbols.")
                return
            symbols = list(dict.fromkeys(s.upper() for s in symbols))
            if action == "subscribe":
                try:
                    timeframe = market.timeframe_parse(content.get("timeframe"))
                except market.InvalidTimeframe as exc:
                    await self._error("invalid_timeframe", str(exc), timeframe=content.get("timeframe"))
                    return
                await self._subscribe(symbols, content.get("streams") or list(market.STREAMS), timeframe)
            else:
                await self._unsubscribe(symbols)
        else:
            await self._error("bad_request", "Unknown action; use subscribe, unsubscribe or ping.")

    async def _subscribe(self, symbols: list[str], streams, timeframe: str) -> None:
        if not isinstance(streams, list) or not streams or any(s not in market.STREAMS for s in streams):
            await self._error("bad_request", f"streams must be a list drawn from {', '.join(market.STREAMS)}.")
            return
        if len(set(self.subscriptions) | set(symbols)) > settings.MARKET_WS_MAX_SYMBOLS:
            await self._error("too_many_symbols", f"At most {settings.MARKET_WS_MAX_SYMBOLS} symbols per connection.")
            return
        for symbol in symbols:
            if not await _symbol_exists(symbol):
                await self._error("unknown_symbol", f"No such symbol: {symbol}.", symbol=symbol)
                continue
            # Join the group first, then read the snapshots: an update racing them is queued behind this
            # handler and dropped below if the snapshot already covers it.
            await self.channel_layer.group_add(market.market_group(symbol), self.channel_name)
            wanted = dict.fromkeys(streams, (None, 0))
            self.subscriptions[symbol] = {**self.subscriptions.get(symbol, {}), **wanted}
            if "bars" in wanted:
                self.timeframes[symbol] = timeframe
            snapshots = await _snapshots(symbol, list(wanted), timeframe)
            seqs = {stream: snapshot["seq"] for stream, snapshot in snapshots.items()}
            subscribed = {"type": "subscribed", "symbol": symbol, "seq": seqs}
            if "bars" in wanted:
                subscribed["timeframe"] = timeframe
            await self.send_json(subscribed)
            for stream, snapshot in snapshots.items():
                self.subscriptions[symbol][stream] = (snapshot.get("epoch"), snapshot["seq"])
                await self.send_json(_snapshot_message(stream, snapshot))

    async def _unsubscribe(self, symbols: list[str]) -> None:
        for symbol in symbols:
            self.timeframes.pop(symbol, None)
            if self.subscriptions.pop(symbol, None) is not None:
                await self.channel_layer.group_discard(market.market_group(symbol), self.channel_name)
            await self.send_json({"type": "unsubscribed", "symbol": symbol})

    async def dispatch(self, message):
        # Channels hops to its one database thread before every handler to close stale connections; updates never
        # touch the database, and 1,000 subscribers queueing on that thread would serialise the whole fan-out.
        if message["type"] == "market.update":
            await self.market_update(message)
        else:
            await super().dispatch(message)

    async def market_update(self, event):
        """A batch of numbered messages of one symbol, from market.market_publish (one per stream that changed)."""
        for message in event["messages"]:
            streams = self.subscriptions.get(message["symbol"])
            stream = "bars" if message["type"] == "bar" else message["type"]
            if streams is None or stream not in streams:
                continue
            if stream == "bars" and message.get("timeframe", market.MINUTE) != self.timeframes.get(message["symbol"]):
                continue  # every timeframe's candle of an update comes; this client follows one
            epoch, seq = streams[stream]
            if message["seq"] <= seq and message.get("epoch") == epoch:
                continue  # already covered by the snapshot this client got
            streams[stream] = (message.get("epoch"), message["seq"])
            await self.send(text_data=message["text"])

    async def _error(self, code: str, message: str, **details) -> None:
        await self.send_json({"type": "error", "code": code, "message": message, "details": details})


def _snapshot_message(stream: str, snapshot: dict) -> dict:
    if stream == "book":
        return {"type": "book", "snapshot": True, **snapshot}
    if stream == "bars":
        return {"type": "bars", "snapshot": True, **snapshot}
    if stream == "trades":
        return {"type": "trades", "snapshot": True, **snapshot}
    return {"type": "quote", **snapshot}


@database_sync_to_async
def _symbol_exists(symbol: str) -> bool:
    return instrument_get(symbol) is not None


@database_sync_to_async
def _snapshots(symbol: str, streams: list[str], timeframe: str) -> dict[str, dict]:
    return {stream: market.market_snapshot(symbol, stream, timeframe=timeframe) for stream in streams}
