"""Second factors: TOTP provisioning (confirmed by a first code), removal, the e-mail code device, code checks."""
import base64
import math
from dataclasses import dataclass

import qrcode
import qrcode.image.svg
from django.db import transaction
from django.utils import timezone
from django_otp.models import Device
from django_otp.plugins.otp_email.models import EmailDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from ..errors import CodeThrottled, InvalidCode, TotpAlreadyConfigured, TotpNotConfigured
from ..models import MfaMethod, User


@dataclass(frozen=True)
class TotpProvisioning:
    secret: str  # base32, for typing into an app by hand
    otpauth_uri: str
    qr_data_uri: str  # an SVG QR code of otpauth_uri


def _qr_svg_data_uri(text: str) -> str:
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    return "data:image/svg+xml;base64," + base64.b64encode(image.to_string()).decode()


def _normalize_code(code: str | None) -> str:
    return "".join((code or "").split())


def email_device_ensure(*, user: User) -> EmailDevice:
    """Every account has a confirmed e-mail code device: the fallback second factor."""
    device = EmailDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        device = EmailDevice.objects.create(user=user, name="E-mail", confirmed=True)
    return device


def check_not_throttled(device: Device) -> None:
    allowed, data = device.verify_is_allowed()
    if not allowed:
        locked_until = (data or {}).get("locked_until")
        wait = (locked_until - timezone.now()).total_seconds() if locked_until else 1
        raise CodeThrottled(retry_after=max(1, math.ceil(wait)))


def verify_second_factor(*, user: User, method: str, code: str | None) -> Device | None:
    """The device that accepts `code`, or None. Call inside a transaction: the device row is locked so two
    requests presenting the same TOTP code are serialized and the second sees `last_t` already advanced."""
    code = _normalize_code(code)
    if not code.isdigit():
        return None
    model = TOTPDevice if method == MfaMethod.TOTP else EmailDevice
    device = model.objects.select_for_update().filter(user=user, confirmed=True).order_by("pk").first()
    if device is None:
        return None
    check_not_throttled(device)
    return device if device.verify_token(code) else None


@transaction.atomic
def totp_provision_start(*, user: User) -> TotpProvisioning:
    """A new, unconfirmed TOTP device (replacing any earlier unconfirmed one) and what the app needs to add it."""
    User.objects.select_for_update().filter(pk=user.pk).first()
    if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        raise TotpAlreadyConfigured()
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    uri = device.config_url
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    return TotpProvisioning(secret=secret, otpauth_uri=uri, qr_data_uri=_qr_svg_data_uri(uri))


def totp_provision_confirm(*, user: User, code: str) -> TOTPDevice:
    """Activate the device being set up with a first correct code (which is then spent)."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).order_by("-pk").first()
        if device is None:
            raise TotpNotConfigured()
        check_not_throttled(device)
        normalized = _normalize_code(code)
        accepted = normalized.isdigit() and device.verify_token(normalized)
        if accepted:
            device.confirmed = True
            device.save(update_fields=["confirmed"])
    # Raised after commit so the device's failure throttle, written by verify_token, is kept.
    if not accepted:
        raise InvalidCode()
    return device


def totp_remove(*, user: User, code: str) -> None:
    """Remove the active authenticator app; proving possession with a current code is required."""
    with transaction.atomic():
        if not TOTPDevice.objects.filter(user=user, confirmed=True).exists():
            raise TotpNotConfigured()
        device = verify_second_factor(user=user, method=MfaMethod.TOTP, code=code)
        if device is not None:
            TOTPDevice.objects.filter(user=user).delete()
    if device is None:
        raise InvalidCode()
