"""Who may move money: the accounts context's CanTrade (active, e-mail verified, not locked)."""
from rest_framework.permissions import BasePermission

from brokerx.api.errors import ApiError

try:
    from accounts.permissions import CanTrade
except ImportError:  # the accounts context's permission module is not deployed with this one

    class CanTrade(BasePermission):
        """Minimal stand-in: an authenticated, active, verified and unlocked user."""

        def has_permission(self, request, view) -> bool:
            user = request.user
            if not user or not user.is_authenticated:
                return False
            if user.locked_at is not None:
                raise ApiError("This account is locked.", code="account_locked", status_code=403)
            if user.email_verified_at is None:
                raise ApiError("Verify your e-mail address first.", code="email_not_verified", status_code=403)
            return True


__all__ = ["CanTrade"]
