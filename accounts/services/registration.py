"""Sign-up and e-mail verification: single-use, expiring link tokens stored as SHA-256, no enumeration."""
import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from ..errors import VerificationTokenInvalid
from ..models import EmailVerificationToken, User
from ..selectors import user_get_by_email
from .mail import send_after_commit


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _verification_link(token: str) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("accounts:verify-email", kwargs={"token": token})


def _issue_verification(*, user: User) -> None:
    """New token for the user (earlier unused ones are spent, so only the latest link works) and its e-mail."""
    now = timezone.now()
    EmailVerificationToken.objects.filter(user=user, used_at__isnull=True).update(used_at=now)
    token = secrets.token_urlsafe(32)
    EmailVerificationToken.objects.create(
        user=user,
        token_hash=_hash_token(token),
        expires_at=now + timedelta(seconds=settings.EMAIL_VERIFICATION_TTL_SECONDS),
    )
    send_after_commit(
        to=user.email,
        subject="Confirm your BrokerX e-mail address",
        template="accounts/email/verify_email.txt",
        context={"user": user, "link": _verification_link(token), "token": token,
                 "hours": settings.EMAIL_VERIFICATION_TTL_SECONDS // 3600},
    )


@transaction.atomic
def user_register(*, email: str, password: str, first_name: str = "", last_name: str = "") -> User | None:
    """Create an unverified trader and mail a verification link.

    The caller answers the same whichever way this goes: an address already registered gets a
    "someone tried to sign up" e-mail instead, and None comes back. Password rules raise ValidationError.
    """
    email = User.objects.normalize_email(email.strip()).lower()
    candidate = User(email=email, first_name=first_name.strip(), last_name=last_name.strip())
    validate_password(password, user=candidate)
    existing = user_get_by_email(email=email)
    if existing is not None:
        make_password(password)  # same work as a real sign-up, so timing does not tell either
        send_after_commit(to=existing.email, subject="Someone tried to sign up to BrokerX with your address",
                          template="accounts/email/already_registered.txt", context={"user": existing})
        return None
    candidate.set_password(password)
    candidate.save()
    _issue_verification(user=candidate)
    return candidate


@transaction.atomic
def email_verification_resend(*, email: str) -> None:
    """Mail a fresh link to an unverified account; does nothing, silently, for anything else."""
    user = user_get_by_email(email=email)
    if user is None or user.email_verified_at is not None or not user.is_active:
        return
    User.objects.select_for_update().filter(pk=user.pk).first()  # one link at a time per user
    _issue_verification(user=user)


def email_verify(*, token: str) -> User:
    """Spend a verification token and mark the address verified; expired, used or unknown tokens raise."""
    with transaction.atomic():
        record = (
            EmailVerificationToken.objects.select_for_update()
            .select_related("user")
            .filter(token_hash=_hash_token(token or ""))
            .first()
        )
        now = timezone.now()
        if record is None or record.used_at is not None or record.expires_at <= now:
            raise VerificationTokenInvalid()
        record.used_at = now
        record.save(update_fields=["used_at"])
        user = record.user
        if user.email_verified_at is None:
            user.email_verified_at = now
            user.save(update_fields=["email_verified_at"])
        return user
