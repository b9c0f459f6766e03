"""A live ASGI server for end-to-end tests: uvicorn in a thread of the test process, on the test database and Redis."""
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections
from django.test import override_settings


def free_port(ports: range) -> int:
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")


def reset_channel_layers() -> None:
    """Forget the process's channel-layer instances. A Redis layer receives on one event loop only, and each
    live server of a test run has a loop of its own; a fresh instance per server keeps them apart."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()


def _application():
    """The project's ASGI routing with a fresh HTTP handler whose WhiteNoise serves the apps' static files straight
    from their folders (tests do not run collectstatic). WhiteNoise reads its settings when the handler is built."""
    from channels.routing import ProtocolTypeRouter
    from django.core.handlers.asgi import ASGIHandler

    from brokerx.asgi import application

    with override_settings(WHITENOISE_USE_FINDERS=True, WHITENOISE_AUTOREFRESH=False):
        http = ASGIHandler()
    return ProtocolTypeRouter({"http": http, "websocket": application.application_mapping["websocket"]})


# The application as deployed (HTTP through the WSGI thread pool), for suites that need no static files.
DEPLOYED_APPLICATION = "brokerx.asgi:application"


@contextmanager
def live_server(ports: range, *, application=None) -> Iterator[str]:
    """Serve HTTP and WebSockets on a free port of `ports`; yields the base URL. `application` is an ASGI app or its
    import string; by default the project's routing with the static files served from the apps' folders."""
    import uvicorn

    db_settings = connections.settings["default"]
    saved_max_age = db_settings.get("CONN_MAX_AGE")
    # Server threads close their connection after each request, so the test database can be flushed and dropped.
    db_settings["CONN_MAX_AGE"] = 0
    port = free_port(ports)
    reset_channel_layers()
    server = uvicorn.Server(uvicorn.Config(application or _application(), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off", ws="websockets-sansio"))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        reset_channel_layers()
        db_settings["CONN_MAX_AGE"] = saved_max_age
