"""Live WebSockets end with the credential they were opened with.

A private stream (`/ws/orders/`, the Alpaca `/stream`) joins one Channels group per thing its access depends on:
the user (`auth.user.<id>`: locked or deactivated), and the credential it presented: an API key
(`auth.key.<pk>`: revoked), a JWT family (`auth.family.<id>`: signed out, refresh reuse, account lock) or the
browser session (`auth.session.<digest>`: signed out). Revoking any of them publishes `session.revoked` to its
group after commit, and the consumers close the socket. An access token that merely expires does not end a socket
opened with it (it was valid when the stream was authorised); a revoked family does.

Pushes are at most once, so a consumer also re-checks its credentials right after joining its groups (a
revocation committed between the handshake and the join cannot leave a socket open) and then every
WS_CREDENTIAL_RECHECK_SECONDS (a lost message, a session that expires).
"""
import asyncio
import hashlib
import logging

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

from brokerx.push import group_publish

from .models import FAMILY_CLAIM, ApiKey, RefreshTokenFamily, User

logger = logging.getLogger(__name__)

REVOKED_MESSAGE = {"type": "session.revoked"}


def user_group(user_id: int) -> str:
    return f"auth.user.{user_id}"


def api_key_group(api_key_pk: int) -> str:
    return f"auth.key.{api_key_pk}"


def family_group(family_id: str) -> str:
    return f"auth.family.{family_id}"


def session_group(session_key: str) -> str:
    # The session key is a bearer secret: groups are Redis channel names, so only a digest goes there.
    return f"auth.session.{hashlib.sha256(session_key.encode()).hexdigest()[:40]}"


def credential_groups(*, user_id: int, auth=None, session_key: str | None = None) -> list[str]:
    """The groups a socket opened by `user_id` with `auth` (ApiKey, AccessToken or None for a session) joins."""
    groups = [user_group(user_id)]
    if isinstance(auth, ApiKey):
        groups.append(api_key_group(auth.pk))
    elif auth is not None and auth.get(FAMILY_CLAIM):
        groups.append(family_group(str(auth[FAMILY_CLAIM])))
    elif auth is None and session_key:
        groups.append(session_group(session_key))
    return groups


def credentials_valid(*, user_id: int, auth=None, session_key: str | None = None) -> bool:
    """Whether the user and the credential a socket was opened with still hold (read from the database)."""
    if not User.objects.filter(pk=user_id, is_active=True, locked_at__isnull=True).exists():
        return False
    if isinstance(auth, ApiKey):
        return ApiKey.objects.filter(pk=auth.pk, revoked_at__isnull=True).exists()
    if auth is not None:
        return RefreshTokenFamily.objects.filter(pk=auth.get(FAMILY_CLAIM), revoked_at__isnull=True).exists()
    if session_key:
        # load() answers {} for a session that is gone or expired.
        data = import_string(f"{settings.SESSION_ENGINE}.SessionStore")(session_key).load()
        return str(data.get("_auth_user_id")) == str(user_id)
    return False


def sockets_close(*groups: str) -> None:
    """Close, after the current transaction commits, every socket in these groups (in every web process)."""
    if not groups:
        return

    def publish() -> None:
        try:
            group_publish([(group, REVOKED_MESSAGE) for group in groups])
        except Exception:
            # The consumers' periodic re-check (WS_CREDENTIAL_RECHECK_SECONDS) closes them all the same, later.
            logger.warning("could not publish a socket revocation", extra={"groups": groups}, exc_info=True)

    transaction.on_commit(publish)


class CredentialBoundMixin:
    """For consumers of private streams: `bind_credentials` after authenticating, `unbind_credentials` on
    disconnect; `credentials_revoked` (to override: close with the stream's code) runs when they go away."""

    _credential_groups: tuple[str, ...] = ()
    _credentials: dict | None = None
    _recheck: asyncio.Task | None = None

    async def bind_credentials(self, *, user_id: int, auth=None, session_key: str | None = None) -> bool:
        """Join the credential groups; False (and nothing joined) if the credentials no longer hold."""
        await self.unbind_credentials()
        credentials = {"user_id": user_id, "auth": auth, "session_key": session_key}
        groups = tuple(credential_groups(**credentials))
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self._credential_groups, self._credentials = groups, credentials
        if not await database_sync_to_async(credentials_valid)(**credentials):
            await self.unbind_credentials()
            return False
        self._recheck = asyncio.create_task(self._recheck_periodically())
        return True

    async def unbind_credentials(self) -> None:
        if self._recheck is not None:
            self._recheck.cancel()
            self._recheck = None
        for group in self._credential_groups:
            await self.channel_layer.group_discard(group, self.channel_name)
        self._credential_groups, self._credentials = (), None

    async def _recheck_periodically(self) -> None:
        while self._credentials is not None:
            await asyncio.sleep(settings.WS_CREDENTIAL_RECHECK_SECONDS)
            if self._credentials is not None and not await database_sync_to_async(credentials_valid)(
                    **self._credentials):
                await self.credentials_revoked()
                return

    async def session_revoked(self, event) -> None:
        """The `session.revoked` message published by `sockets_close`."""
        await self.credentials_revoked()

    async def credentials_revoked(self) -> None:
        raise NotImplementedError
