"""DRF permissions other contexts put on their views: CanTrade (deposits, orders), HasTradeScope (API key scope)."""
from rest_framework.permissions import SAFE_METHODS, BasePermission

from .checks import check_key_may_write, check_may_trade
from .models import ApiKey


class CanTrade(BasePermission):
    """The caller's account is active, e-mail-verified and not locked, and a write with an API key uses one with the
    'trade' scope. Use on deposit, withdrawal and order endpoints.

    Answers 401 for anonymous callers and 403 with a specific code (`email_not_verified`, `account_locked`,
    `account_inactive`, `insufficient_scope`) otherwise, so the client can tell the trader what to do."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        # A write checks the key's scope too: without it a read-only key could move money
        # (tests/security/test_api_key_scopes.py).
        writes_with_key = request.method not in SAFE_METHODS and isinstance(request.auth, ApiKey)
        check_may_trade(user, api_key=request.auth if writes_with_key else None)
        return True


class HasTradeScope(BasePermission):
    """Writes with an API key need the key's 'trade' scope; reads need any key. JWT and session users have all
    scopes. Combine with IsAuthenticated (the default)."""

    def has_permission(self, request, view) -> bool:
        if request.method not in SAFE_METHODS and isinstance(request.auth, ApiKey):
            check_key_may_write(request.auth)
        return True


class IsInteractiveUser(BasePermission):
    """Only a person signed in with their second factor (JWT or session), never an API key: guards account
    management (API keys, MFA devices) so a leaked key cannot mint more keys or change the second factor."""

    message = "Account settings cannot be changed with an API key; sign in instead."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and not isinstance(request.auth, ApiKey))
