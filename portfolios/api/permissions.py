"""Who may move money: the accounts context's CanTrade (active, e-mail verified, not locked)."""
from accounts.permissions import CanTrade

__all__ = ["CanTrade"]
