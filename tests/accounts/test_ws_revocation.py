"""Live private streams end with their credential: revoked API key, signed-out token family or session, locked account.

The consumers run in the project's ASGI application on the real Redis pub/sub layer; revocations go through the
accounts services and views, which publish `session.revoked` after their commit.
"""
import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connections
from django.test import Client

import accounts.realtime
from accounts.services import api_key_create, api_key_revoke, jwt_issue, token_family_revoke
from accounts.services.staff import user_lock
from brokerx.asgi import application
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _close_connections():
    yield
    await sync_to_async(connections.close_all, thread_sensitive=True)()


async def open_orders_stream(*, token: str | None = None, headers=None) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, f"/ws/orders/{f'?token={token}' if token else ''}",
                                         headers=headers or [])
    connected, code = await communicator.connect(timeout=5)
    assert connected, f"refused with {code}"
    assert (await communicator.receive_json_from(timeout=5))["type"] == "hello"
    return communicator


async def closed_with(communicator: WebsocketCommunicator, timeout: float = 5) -> int:
    message = await communicator.receive_output(timeout=timeout)
    assert message["type"] == "websocket.close", message
    return message["code"]


async def still_open(communicator: WebsocketCommunicator) -> bool:
    await communicator.send_json_to({"type": "ping"})
    return await communicator.receive_json_from(timeout=5) == {"type": "pong"}


@pytest.fixture
def traders():
    return UserFactory(), UserFactory()


@pytest.fixture
def mfa_session_cookie():
    """The cookie header of a browser session of `user` that passed its second factor."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_email.models import EmailDevice

    def make(user) -> tuple[Client, list]:
        device = EmailDevice.objects.create(user=user, name="email", confirmed=True)
        client = Client()
        client.force_login(user)
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
        return client, [(b"cookie", f"{settings.SESSION_COOKIE_NAME}={session.session_key}".encode())]

    return make


async def test_a_revoked_api_key_closes_its_streams_and_only_those(traders):
    owner, other = traders
    revoked = await sync_to_async(api_key_create, thread_sensitive=True)(user=owner, name="bot", scope="read")
    kept = await sync_to_async(api_key_create, thread_sensitive=True)(user=owner, name="other bot", scope="read")
    by_revoked = await open_orders_stream(token=f"{revoked.api_key.key_id}:{revoked.secret}")
    by_kept = await open_orders_stream(token=f"{kept.api_key.key_id}:{kept.secret}")
    other_tokens = await sync_to_async(jwt_issue, thread_sensitive=True)(user=other)
    others = await open_orders_stream(token=other_tokens["access"])

    await sync_to_async(api_key_revoke, thread_sensitive=True)(api_key=revoked.api_key)

    assert await closed_with(by_revoked) == 4401
    assert await still_open(by_kept) and await still_open(others)
    for communicator in (by_kept, others):
        await communicator.disconnect()


async def test_signing_out_of_the_api_closes_the_streams_of_that_token_family(traders):
    owner, _ = traders
    signed_out = await sync_to_async(jwt_issue, thread_sensitive=True)(user=owner)
    other_sign_in = await sync_to_async(jwt_issue, thread_sensitive=True)(user=owner)
    stream = await open_orders_stream(token=signed_out["access"])
    kept = await open_orders_stream(token=other_sign_in["access"])

    await sync_to_async(token_family_revoke, thread_sensitive=True)(refresh=signed_out["refresh"], user=owner)

    assert await closed_with(stream) == 4401
    assert await still_open(kept)
    await kept.disconnect()


async def test_signing_out_of_the_browser_closes_that_sessions_streams(traders, mfa_session_cookie):
    owner, _ = traders
    client, cookie = await sync_to_async(mfa_session_cookie, thread_sensitive=True)(owner)
    _, other_cookie = await sync_to_async(mfa_session_cookie, thread_sensitive=True)(owner)
    stream = await open_orders_stream(headers=cookie)
    other_browser = await open_orders_stream(headers=other_cookie)

    response = await sync_to_async(client.post, thread_sensitive=True)("/logout/")
    assert response.status_code == 302

    assert await closed_with(stream) == 4401
    assert await still_open(other_browser)
    await other_browser.disconnect()


async def test_locking_an_account_closes_every_stream_of_it(traders, mfa_session_cookie):
    owner, staff = traders
    key = await sync_to_async(api_key_create, thread_sensitive=True)(user=owner, name="bot", scope="trade")
    _, cookie = await sync_to_async(mfa_session_cookie, thread_sensitive=True)(owner)
    streams = [
        await open_orders_stream(token=f"{key.api_key.key_id}:{key.secret}"),
        await open_orders_stream(token=(await sync_to_async(jwt_issue, thread_sensitive=True)(user=owner))["access"]),
        await open_orders_stream(headers=cookie),
    ]

    await sync_to_async(user_lock, thread_sensitive=True)(user=owner, actor=staff, reason="test")

    assert [await closed_with(s) for s in streams] == [4401, 4401, 4401]


async def test_a_lost_revocation_message_is_caught_by_the_periodic_recheck(traders, settings, monkeypatch):
    settings.WS_CREDENTIAL_RECHECK_SECONDS = 0.2
    owner, _ = traders
    key = await sync_to_async(api_key_create, thread_sensitive=True)(user=owner, name="bot", scope="read")
    stream = await open_orders_stream(token=f"{key.api_key.key_id}:{key.secret}")

    def lost(messages, alias="default"):
        raise ConnectionError("Redis went away")

    monkeypatch.setattr(accounts.realtime, "group_publish", lost)
    await sync_to_async(api_key_revoke, thread_sensitive=True)(api_key=key.api_key)

    assert await closed_with(stream, timeout=5) == 4401


async def test_a_stream_authorised_before_a_revocation_committed_is_refused_when_it_binds(traders, monkeypatch):
    """The handshake checked the key; the key is revoked before the consumer joins its groups (so the push
    reaches nobody): the consumer's own re-check after joining refuses it."""
    owner, _ = traders
    key = await sync_to_async(api_key_create, thread_sensitive=True)(user=owner, name="bot", scope="read")
    from accounts.models import ApiKey

    bind = accounts.realtime.CredentialBoundMixin.bind_credentials

    async def bind_after_revocation(self, **credentials):
        await sync_to_async(ApiKey.objects.filter(pk=key.api_key.pk).update, thread_sensitive=True)(
            revoked_at="2026-01-01T00:00:00Z")
        return await bind(self, **credentials)

    monkeypatch.setattr(accounts.realtime.CredentialBoundMixin, "bind_credentials", bind_after_revocation)
    communicator = WebsocketCommunicator(application, f"/ws/orders/?token={key.api_key.key_id}:{key.secret}")
    assert await communicator.connect(timeout=5) == (False, 4401)


async def test_the_alpaca_trade_updates_stream_closes_when_its_key_is_revoked(traders):
    owner, _ = traders
    key = await sync_to_async(api_key_create, thread_sensitive=True)(user=owner, name="sdk", scope="read")
    stream = WebsocketCommunicator(application, "/stream")
    assert (await stream.connect(timeout=5))[0]
    await stream.send_json_to({"action": "authenticate",
                               "data": {"key_id": key.api_key.key_id, "secret_key": key.secret}})
    authorised = await stream.receive_json_from(timeout=5)
    assert authorised["data"]["status"] == "authorized", authorised

    await sync_to_async(api_key_revoke, thread_sensitive=True)(api_key=key.api_key)

    assert await closed_with(stream) == 1008
    await asyncio.sleep(0)
