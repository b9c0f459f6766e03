"""Runs the official alpaca-py SDK for the tests in its own process: one JSON command per stdin line, one reply each.

Why a separate process: the SDK should see what an outside client sees. This process is started with `python -P`
from outside the project, with no Django settings in its environment, so nothing of BrokerX is importable there and
the SDK's TradingStream runs its own event loop undisturbed by the test process's. It only drives the SDK,
unchanged; the tests assert on what the SDK parsed (its pydantic models, dumped).
"""
import json
import queue
import sys
import threading
import traceback

from alpaca.broker.client import BrokerClient
from alpaca.common.exceptions import APIError
from alpaca.trading import requests as trading_requests
from alpaca.trading.client import TradingClient
from alpaca.trading.stream import TradingStream

_clients: dict[tuple, TradingClient] = {}
_stream: dict = {}


def _client(spec: dict) -> TradingClient:
    key = (spec["key"], spec["secret"], spec["url"])
    if key not in _clients:
        _clients[key] = TradingClient(spec["key"], spec["secret"], paper=True, url_override=spec["url"])
    return _clients[key]


def _argument(value):
    """A request object built here from its description (nested ones too: a bracket's TakeProfitRequest)."""
    if isinstance(value, dict) and "__request__" in value:
        fields = {name: _argument(field) for name, field in value.get("fields", {}).items()}
        return getattr(trading_requests, value["__request__"])(**fields)
    return value


def _dump(value):
    if value is None:
        return None, "None"
    if isinstance(value, list):
        return [_dump(item)[0] for item in value], f"list[{type(value[0]).__name__ if value else ''}]"
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", by_alias=True), type(value).__name__
    return value, type(value).__name__


def _call(command: dict) -> dict:
    client = _client(command["client"])
    args = [_argument(a) for a in command.get("args", [])]
    kwargs = {k: _argument(v) for k, v in command.get("kwargs", {}).items()}
    try:
        result = getattr(client, command["method"])(*args, **kwargs)
    except APIError as exc:
        try:
            code, message = exc.code, exc.message
        except (ValueError, KeyError, TypeError):
            code = message = None
        return {"ok": False, "error": "APIError", "status_code": exc.status_code, "code": code, "message": message,
                "text": str(exc)}
    value, type_name = _dump(result)
    return {"ok": True, "type": type_name, "value": value}


def _activities(command: dict) -> dict:
    """GET /v2/account/activities[/{type}] through the TradingClient's own HTTP layer (its version has no method
    for it), each item parsed by the SDK's activity models as its BrokerClient parses them."""
    client = _client(command["client"])
    path = "/account/activities" + (f"/{command['activity_type']}" if command.get("activity_type") else "")
    try:
        raw = client.get(path, command.get("params") or {})
    except APIError as exc:
        return {"ok": False, "error": "APIError", "status_code": exc.status_code, "text": str(exc)}
    parsed = [BrokerClient._parse_activity(item) for item in raw]
    return {"ok": True, "type": f"list[{','.join(sorted({type(a).__name__ for a in parsed}))}]",
            "value": [a.model_dump(mode="json") for a in parsed]}


def _stream_start(command: dict) -> dict:
    updates: queue.Queue = queue.Queue()
    stream = TradingStream(command["key"], command["secret"], paper=True, url_override=command["url"])

    async def on_update(update):
        updates.put(_dump(update))

    stream.subscribe_trade_updates(on_update)
    thread = threading.Thread(target=stream.run, daemon=True)
    thread.start()
    _stream.update(stream=stream, thread=thread, updates=updates)
    return {"ok": True}


def _stream_status(command: dict) -> dict:
    stream = _stream.get("stream")
    return {"ok": True, "running": bool(stream and stream._running)}


def _stream_next(command: dict) -> dict:
    try:
        value, type_name = _stream["updates"].get(timeout=command.get("timeout", 5))
    except queue.Empty:
        return {"ok": True, "type": "None", "value": None}
    return {"ok": True, "type": type_name, "value": value}


def _stream_stop(command: dict) -> dict:
    stream, thread = _stream.pop("stream", None), _stream.pop("thread", None)
    if stream is not None and stream._loop is not None:
        stream.stop()
        thread.join(timeout=15)
    return {"ok": True, "stopped": thread is None or not thread.is_alive()}


HANDLERS = {"call": _call, "activities": _activities, "stream_start": _stream_start, "stream_status": _stream_status,
            "stream_next": _stream_next, "stream_stop": _stream_stop}


def main() -> None:
    print(json.dumps({"ok": True, "ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command.get("op") == "quit":
            break
        try:
            reply = HANDLERS[command["op"]](command)
        except Exception as exc:  # noqa: BLE001  (every failure goes back to the test, which asserts on it)
            reply = {"ok": False, "error": type(exc).__name__, "text": str(exc), "traceback": traceback.format_exc()}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
