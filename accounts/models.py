"""Identity: a user is a person who signs in with an e-mail address (traders and back-office staff)."""
import uuid

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra_fields):
        if not email:
            raise ValueError("An e-mail address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email: str, password: str | None = None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra_fields)


class User(AbstractUser):
    username = None
    email = models.EmailField("e-mail address", unique=True)
    email_verified_at = models.DateTimeField(null=True, blank=True)
    locked_at = models.DateTimeField(
        null=True, blank=True, help_text="Set by staff; a locked account cannot log in or trade."
    )

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email

    @property
    def is_email_verified(self) -> bool:
        return self.email_verified_at is not None

    @property
    def is_locked(self) -> bool:
        return self.locked_at is not None


class EmailVerificationToken(models.Model):
    """A single-use link token; only its SHA-256 is stored, so a database reader cannot verify anyone's address."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="email_verification_tokens")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "-created_at"], name="accounts_evt_user_created")]

    def __str__(self) -> str:
        return f"verification of {self.user_id} (expires {self.expires_at:%Y-%m-%d %H:%M})"


class MfaMethod(models.TextChoices):
    TOTP = "totp", "Authenticator app (TOTP)"
    EMAIL = "email", "Code by e-mail"


class MfaChallenge(models.Model):
    """The state between a correct password and a correct second factor; spent by the first success."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="mfa_challenges")
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    failed_attempts = models.PositiveSmallIntegerField(default=0)
    completed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"MFA challenge {self.id} of {self.user_id}"


# The JWT claim (refresh and access tokens) naming the token's family: tokens write it, live streams read it.
FAMILY_CLAIM = "fam"


class RefreshTokenFamily(models.Model):
    """Every refresh token rotated from one login; presenting a rotated-out member revokes the whole family."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="refresh_token_families")
    current_jti = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"token family {self.id} of {self.user_id}"


class ApiKeyScope(models.TextChoices):
    READ = "read", "Read only"
    TRADE = "trade", "Read and trade"


class ApiKey(models.Model):
    """An integrator's credential: public key id plus a secret shown once and stored as an HMAC-SHA256."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    key_id = models.CharField(max_length=32, unique=True)
    secret_hash = models.CharField(max_length=64)
    scope = models.CharField(max_length=16, choices=ApiKeyScope.choices, default=ApiKeyScope.READ)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        indexes = [models.Index(fields=["user", "-created_at"], name="accounts_apikey_user_created")]

    def __str__(self) -> str:
        return f"{self.key_id} ({self.name})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def allows_trading(self) -> bool:
        return self.scope == ApiKeyScope.TRADE


class LoginEvent(models.Model):
    """One sign-in attempt (password or second factor), kept for the client's and staff's history."""

    class Reason(models.TextChoices):
        OK = "ok", "Signed in"
        PASSWORD_OK = "password_ok", "Password accepted, second factor pending"
        BAD_CREDENTIALS = "bad_credentials", "Wrong e-mail or password"
        BAD_CODE = "bad_code", "Wrong or reused second-factor code"
        LOCKED_OUT = "locked_out", "Too many failures"
        ACCOUNT_LOCKED = "account_locked", "Account locked by staff"
        INACTIVE = "inactive", "Account inactive"
        CHALLENGE_EXPIRED = "challenge_expired", "Second-factor challenge expired or spent"

    user = models.ForeignKey(User, on_delete=models.CASCADE, null=True, blank=True, related_name="login_events")
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    success = models.BooleanField(default=False)
    reason = models.CharField(max_length=32, choices=Reason.choices)
    method = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["user", "-created_at"], name="accounts_login_user_created")]
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.reason} ({self.ip})"


class StaffAuditLog(models.Model):
    """Append-only record of what a member of staff did in the back office, and to what."""

    actor = models.ForeignKey(User, on_delete=models.PROTECT, related_name="staff_actions")
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    reason = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="accounts_audit_object"),
            models.Index(fields=["actor", "-created_at"], name="accounts_audit_actor"),
        ]
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.object_repr}"
