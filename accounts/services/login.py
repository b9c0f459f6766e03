"""Two-step sign-in: password -> MFA challenge -> second factor (TOTP or e-mail code), with lockout and history."""
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone
from django_otp.models import Device
from django_otp.plugins.otp_email.models import EmailDevice

from .. import lockout
from ..errors import AccountLocked, ChallengeInvalid, CodeNotSent, InvalidCode, InvalidCredentials, LoginLockedOut
from ..models import LoginEvent, MfaChallenge, MfaMethod, User
from ..selectors import user_get_by_email, user_mfa_methods
from .mfa import email_device_ensure, verify_second_factor

_DUMMY_PASSWORD_HASH = None


@dataclass(frozen=True)
class LoginChallenge:
    id: uuid.UUID
    expires_at: datetime
    methods: list[str]  # second factors accepted, preferred first
    email_code_sent: bool


def _burn_password_time(password: str) -> None:
    # An unknown address costs the same hashing work as a known one, so response time does not tell them apart.
    global _DUMMY_PASSWORD_HASH
    if _DUMMY_PASSWORD_HASH is None:
        _DUMMY_PASSWORD_HASH = make_password("not-a-password")
    User(password=_DUMMY_PASSWORD_HASH).check_password(password)


def _event(*, user: User | None, ip: str | None, user_agent: str, success: bool, reason: str, method: str = "") -> None:
    LoginEvent.objects.create(user=user, ip=ip or None, user_agent=(user_agent or "")[:300], success=success,
                              reason=reason, method=method)


def _send_email_code_after_commit(device: EmailDevice) -> None:
    transaction.on_commit(lambda: device.generate_challenge())


def login_start(*, email: str, password: str, ip: str | None, user_agent: str = "") -> LoginChallenge:
    """Check the password and open an MFA challenge. Without a confirmed TOTP device the e-mail code is sent.

    Wrong e-mail and wrong password give the same error; failures count towards the lockout."""
    email = (email or "").strip().lower()
    try:
        lockout.check_not_locked_out(email=email, ip=ip)
    except LoginLockedOut:
        _event(user=user_get_by_email(email=email), ip=ip, user_agent=user_agent, success=False,
               reason=LoginEvent.Reason.LOCKED_OUT)
        raise
    user = user_get_by_email(email=email)
    if user is None:
        _burn_password_time(password)
    password_ok = user is not None and user.check_password(password)
    if not password_ok or not user.is_active:
        lockout.record_failure(email=email, ip=ip)
        reason = LoginEvent.Reason.INACTIVE if password_ok else LoginEvent.Reason.BAD_CREDENTIALS
        _event(user=user, ip=ip, user_agent=user_agent, success=False, reason=reason)
        raise InvalidCredentials()
    if user.locked_at is not None:
        _event(user=user, ip=ip, user_agent=user_agent, success=False, reason=LoginEvent.Reason.ACCOUNT_LOCKED)
        raise AccountLocked()

    with transaction.atomic():
        challenge = MfaChallenge.objects.create(
            user=user, ip=ip or None,
            expires_at=timezone.now() + timedelta(seconds=settings.MFA_CHALLENGE_TTL_SECONDS),
        )
        _event(user=user, ip=ip, user_agent=user_agent, success=True, reason=LoginEvent.Reason.PASSWORD_OK)
        email_device = email_device_ensure(user=user)
        methods = user_mfa_methods(user=user)
        email_code_sent = MfaMethod.TOTP not in methods
        if email_code_sent:
            _send_email_code_after_commit(email_device)
    return LoginChallenge(id=challenge.id, expires_at=challenge.expires_at, methods=methods,
                          email_code_sent=email_code_sent)


def _open_challenge(challenge_id) -> MfaChallenge:
    """The challenge row, locked; expired, spent or exhausted challenges raise."""
    try:
        challenge_id = uuid.UUID(str(challenge_id))
    except ValueError as exc:
        raise ChallengeInvalid() from exc
    challenge = MfaChallenge.objects.select_for_update().select_related("user").filter(pk=challenge_id).first()
    if (
        challenge is None
        or challenge.completed_at is not None
        or challenge.expires_at <= timezone.now()
        or challenge.failed_attempts >= settings.MFA_CHALLENGE_MAX_ATTEMPTS
    ):
        raise ChallengeInvalid()
    return challenge


def login_mfa_email_send(*, challenge_id) -> None:
    """Send (or send again) the e-mail code for an open challenge; django-otp's cooldown applies."""
    with transaction.atomic():
        challenge = _open_challenge(challenge_id)
        device = email_device_ensure(user=challenge.user)
        allowed, _ = device.generate_is_allowed()
        if not allowed:
            raise CodeNotSent()
        _send_email_code_after_commit(device)


def login_mfa_verify(*, challenge_id, code: str, method: str | None = None, ip: str | None,
                     user_agent: str = "") -> tuple[User, Device]:
    """Answer the challenge. Success spends it and returns the user and the device that verified them; the
    caller then issues JWTs or opens a session. Failures count per challenge and towards the lockout."""
    failure: Exception | None = None
    with transaction.atomic():
        challenge = _open_challenge(challenge_id)
        user = challenge.user
        lockout.check_not_locked_out(email=user.email, ip=ip)
        if user.locked_at is not None or not user.is_active:
            raise AccountLocked()
        methods = user_mfa_methods(user=user)
        method = method or methods[0]
        device = verify_second_factor(user=user, method=method, code=code) if method in methods else None
        if device is None:
            challenge.failed_attempts += 1
            challenge.save(update_fields=["failed_attempts"])
            failure = InvalidCode()
        else:
            challenge.completed_at = timezone.now()
            challenge.save(update_fields=["completed_at"])
            _event(user=user, ip=ip, user_agent=user_agent, success=True, reason=LoginEvent.Reason.OK, method=method)
            user.last_login = challenge.completed_at
            user.save(update_fields=["last_login"])
    if failure is not None:
        # After commit, so the spent attempt and the device's own throttle stay recorded.
        lockout.record_failure(email=user.email, ip=ip)
        _event(user=user, ip=ip, user_agent=user_agent, success=False, reason=LoginEvent.Reason.BAD_CODE,
               method=method)
        raise failure
    lockout.clear_account(email=user.email)
    return user, device
