"""Writes of the accounts context (sign-up, sign-in, tokens, MFA devices, API keys, staff actions)."""
from .api_keys import api_key_authenticate, api_key_create, api_key_revoke
from .login import login_mfa_email_send, login_mfa_verify, login_start
from .mfa import email_device_ensure, totp_provision_confirm, totp_provision_start, totp_remove
from .registration import email_verification_resend, email_verify, user_register
from .staff import staff_audit_record, user_lock, user_unlock
from .tokens import access_token_authenticate, jwt_issue, token_family_revoke, token_refresh

__all__ = [
    "access_token_authenticate",
    "api_key_authenticate",
    "api_key_create",
    "api_key_revoke",
    "email_device_ensure",
    "email_verification_resend",
    "email_verify",
    "jwt_issue",
    "login_mfa_email_send",
    "login_mfa_verify",
    "login_start",
    "staff_audit_record",
    "token_family_revoke",
    "token_refresh",
    "totp_provision_confirm",
    "totp_provision_start",
    "totp_remove",
    "user_lock",
    "user_register",
    "user_unlock",
]
