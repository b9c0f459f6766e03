"""The private order stream /ws/orders/: the signed-in user's execution reports, each with its sequence number."""
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from accounts.realtime import CredentialBoundMixin

from .metrics import observe_push_delay
from .models import StreamCounter
from .services import user_stream_group


class OrdersConsumer(CredentialBoundMixin, AsyncJsonWebsocketConsumer):
    """Joins the user's group; reports arrive after the matching commit. On connect it tells the client the
    last sequence number so far, so a client can fetch anything it missed from /api/v1/fills?after=<seq>."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        auth, session = self.scope.get("auth"), self.scope.get("session")
        session_key = session.session_key if auth is None and session is not None else None
        if not await self.bind_credentials(user_id=user.pk, auth=auth, session_key=session_key):
            await self.close(code=4401)
            return
        self.user_id = user.pk
        self.group = user_stream_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "stream": "orders", "last_seq": await self._last_seq()})

    async def disconnect(self, code):
        await self.unbind_credentials()
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def execution_report(self, event):
        await self.send_json({"type": "execution_report", **event["report"]})
        observe_push_delay("sent", event["report"].get("timestamp"), time.time())

    async def credentials_revoked(self):
        """The session, key or token family it was opened with is gone, or the account is locked."""
        await self.close(code=4401)

    @database_sync_to_async
    def _last_seq(self) -> int:
        counter = StreamCounter.objects.filter(user_id=self.user_id).first()
        return counter.last_seq if counter else 0
