"""Typed errors of the accounts context; each carries the stable code and HTTP status the native API shows."""
from rest_framework.exceptions import AuthenticationFailed

from brokerx.api.errors import ApiError


class AccountsError(ApiError):
    default_code = "accounts_error"


class InvalidCredentials(AccountsError):
    status_code = 401
    default_code = "invalid_credentials"
    default_detail = "The e-mail address or password is incorrect."


class InvalidCode(AccountsError):
    status_code = 401
    default_code = "invalid_code"
    default_detail = "The code is incorrect, expired or already used."


class ChallengeInvalid(AccountsError):
    status_code = 401
    default_code = "challenge_invalid"
    default_detail = "This sign-in attempt has expired or was already used; sign in again."


class LoginLockedOut(AccountsError):
    status_code = 429
    default_code = "login_locked_out"
    default_detail = "Too many failed sign-in attempts."

    def __init__(self, *, retry_after: int):
        minutes = max(1, (retry_after + 59) // 60)
        super().__init__(
            f"Too many failed sign-in attempts. Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
            details={"retry_after": retry_after},
        )
        self.wait = retry_after  # read by the error handler for the Retry-After header


class AccountLocked(AccountsError):
    status_code = 403
    default_code = "account_locked"
    default_detail = "This account is locked. Please contact support."


class AccountInactive(AccountsError):
    status_code = 403
    default_code = "account_inactive"
    default_detail = "This account is not active."


class EmailNotVerified(AccountsError):
    status_code = 403
    default_code = "email_not_verified"
    default_detail = "Verify your e-mail address before trading or depositing."


class InsufficientScope(AccountsError):
    status_code = 403
    default_code = "insufficient_scope"
    default_detail = "This API key is read-only; writes need a key with the 'trade' scope."


class VerificationTokenInvalid(AccountsError):
    status_code = 400
    default_code = "verification_token_invalid"
    default_detail = "This verification link is invalid, expired or already used."


class TokenInvalid(AccountsError, AuthenticationFailed):
    status_code = 401
    default_code = "token_invalid"
    default_detail = "The token is invalid or expired."


class TokenReused(AccountsError, AuthenticationFailed):
    status_code = 401
    default_code = "token_reused"
    default_detail = "This refresh token was already used; every token of this sign-in has been revoked."


class ApiKeyInvalid(AccountsError, AuthenticationFailed):
    """Unknown key id, wrong secret, revoked key, or a key whose owner cannot sign in (never says which)."""

    status_code = 401
    default_code = "api_key_invalid"
    default_detail = "The API key is invalid or revoked."


class TotpAlreadyConfigured(AccountsError):
    status_code = 409
    default_code = "totp_already_configured"
    default_detail = "An authenticator app is already set up; remove it first."


class TotpNotConfigured(AccountsError):
    status_code = 404
    default_code = "totp_not_configured"
    default_detail = "No authenticator app is being set up or active."


class CodeNotSent(AccountsError):
    status_code = 429
    default_code = "code_not_sent"
    default_detail = "A code was sent moments ago; wait a little before asking for another."


class CodeThrottled(AccountsError):
    """django-otp's back-off after a wrong code (1 s, 2 s, 4 s, ...): not counted as a failure, just wait."""

    status_code = 429
    default_code = "code_throttled"

    def __init__(self, *, retry_after: int):
        super().__init__(f"Too soon after a wrong code. Wait {retry_after} s and try again.",
                         details={"retry_after": retry_after})
        self.wait = retry_after
