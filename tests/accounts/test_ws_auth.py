"""WebSocketAuthMiddleware: JWT or API key by `?token=` or Authorization header; invalid credentials stay anonymous."""
import json
from urllib.parse import urlsplit

import pytest
from asgiref.testing import ApplicationCommunicator
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.routing import URLRouter
from django.urls import path

from accounts.services import api_key_create, jwt_issue
from brokerx.ws_auth import WebSocketAuthMiddleware
from tests.factories import UserFactory


class WhoAmI(AsyncJsonWebsocketConsumer):
    async def connect(self):
        await self.accept()
        user = self.scope["user"]
        await self.send_json({"user_id": user.pk if user.is_authenticated else None,
                              "auth": type(self.scope.get("auth")).__name__})


app = WebSocketAuthMiddleware(URLRouter([path("ws/whoami/", WhoAmI.as_asgi())]))


async def _whoami(path: str, headers=None) -> dict:
    # asgiref's communicator: importing channels.testing needs daphne, which the platform does not ship.
    parts = urlsplit(path)
    communicator = ApplicationCommunicator(app, {
        "type": "websocket", "path": parts.path, "query_string": parts.query.encode(),
        "headers": headers or [], "subprotocols": [],
    })
    await communicator.send_input({"type": "websocket.connect"})
    assert (await communicator.receive_output(5))["type"] == "websocket.accept"
    message = json.loads((await communicator.receive_output(5))["text"])
    await communicator.send_input({"type": "websocket.disconnect", "code": 1000})
    await communicator.wait(5)
    return message


@pytest.fixture(autouse=True)
async def _close_thread_connections():
    yield
    # database_sync_to_async ran queries in its own thread: close that connection so the test DB can be dropped.
    from asgiref.sync import sync_to_async
    from django.db import connections

    await sync_to_async(connections.close_all, thread_sensitive=True)()


@pytest.fixture
def creds(transactional_db):
    user = UserFactory()
    created = api_key_create(user=user, name="ws")
    return user, jwt_issue(user=user)["access"], f"{created.api_key.key_id}:{created.secret}"


async def test_jwt_in_query(creds):
    user, access, _ = creds
    assert await _whoami(f"/ws/whoami/?token={access}") == {"user_id": user.pk, "auth": "AccessToken"}


async def test_jwt_in_header(creds):
    user, access, _ = creds
    message = await _whoami("/ws/whoami/", [(b"authorization", f"Bearer {access}".encode())])
    assert message["user_id"] == user.pk


async def test_api_key_in_query_and_header(creds):
    user, _, key = creds
    assert (await _whoami(f"/ws/whoami/?token={key}"))["auth"] == "ApiKey"
    assert (await _whoami("/ws/whoami/", [(b"authorization", f"ApiKey {key}".encode())]))["user_id"] == user.pk


async def test_bad_credentials_stay_anonymous(creds):
    _, access, key = creds
    assert (await _whoami(f"/ws/whoami/?token={access[:-2]}xx"))["user_id"] is None
    assert (await _whoami(f"/ws/whoami/?token={key}x"))["user_id"] is None
    assert (await _whoami("/ws/whoami/"))["user_id"] is None
