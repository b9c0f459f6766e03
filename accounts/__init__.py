"""Accounts: identity of traders and staff, sign-up, e-mail verification, MFA login, API keys."""
