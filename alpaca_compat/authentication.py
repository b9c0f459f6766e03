"""DRF authentication by Alpaca's headers: APCA-API-KEY-ID and APCA-API-SECRET-KEY, checked as a BrokerX API key."""
from rest_framework import authentication
from rest_framework.permissions import SAFE_METHODS, BasePermission

from accounts.services import api_key_authenticate


class AlpacaKeyAuthentication(authentication.BaseAuthentication):
    """request.user is the key's owner, request.auth the ApiKey (its scope gates writes)."""

    def authenticate(self, request):
        key_id = request.META.get("HTTP_APCA_API_KEY_ID", "").strip()
        secret = request.META.get("HTTP_APCA_API_SECRET_KEY", "").strip()
        if not key_id and not secret:
            return None
        return api_key_authenticate(key_id=key_id, secret=secret)

    def authenticate_header(self, request) -> str:
        return 'APCA realm="api"'


class AlpacaTradeScope(BasePermission):
    """Writes (orders, closing positions) need a key with the trade scope; reads need any valid key."""

    message = "forbidden: this API key is read-only"

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return bool(request.auth is not None and request.auth.allows_trading())
