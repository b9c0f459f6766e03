"""One asyncio loop per process, in a daemon thread, for pushes to the Channels layers from sync code.

async_to_sync would build an event loop and new Redis connections for every call (tens of milliseconds);
this loop keeps the layers' connections open across pushes. A forked worker starts its own loop.
"""
import asyncio
import os
import threading

_loop: asyncio.AbstractEventLoop | None = None
_loop_pid = 0
_lock = threading.Lock()


def push_loop() -> asyncio.AbstractEventLoop:
    global _loop, _loop_pid
    with _lock:
        if _loop is None or _loop_pid != os.getpid():
            _loop, _loop_pid = asyncio.new_event_loop(), os.getpid()
            threading.Thread(target=_loop.run_forever, name="channels-push", daemon=True).start()
        return _loop


def push_soon(coroutine) -> "asyncio.Future":
    """Schedule a push on the process's push loop; returns a concurrent future (callers may ignore it)."""
    return asyncio.run_coroutine_threadsafe(coroutine, push_loop())
