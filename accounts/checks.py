"""What a caller may do: refusals as the accounts context's typed errors (403 with a code the client can act on)."""
from .errors import AccountInactive, AccountLocked, EmailNotVerified, InsufficientScope
from .models import ApiKey


def check_may_trade(user, *, api_key: ApiKey | None = None) -> None:
    """The one definition of trade permission (orders on every surface, deposits, withdrawals): an active,
    unlocked, e-mail-verified account, and, for a caller using an API key, a key with the 'trade' scope."""
    if not user.is_active:
        raise AccountInactive()
    if user.locked_at is not None:
        raise AccountLocked()
    if user.email_verified_at is None:
        raise EmailNotVerified()
    if api_key is not None:
        check_key_may_write(api_key)


def check_key_may_write(api_key: ApiKey) -> None:
    if not api_key.allows_trading():
        raise InsufficientScope()
