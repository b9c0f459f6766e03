"""Demo sign-in: the demo staff and trader get the e-mail code factor, and the trader an authenticator app
whose key is printed once (when created)."""
import base64

from django.conf import settings
from django_otp.plugins.otp_totp.models import TOTPDevice

from .models import User
from .services import email_device_ensure

DEMO_EMAILS = ("staff@brokerx.example", "trader@brokerx.example")
DEMO_TOTP_EMAIL = "trader@brokerx.example"


def seed_demo(stdout) -> None:
    for user in User.objects.filter(email__in=DEMO_EMAILS):
        email_device_ensure(user=user)
    mail_hint = getattr(settings, "EMAIL_FILE_PATH", "")
    stdout.write(f"demo sign-in: password, then the 6-digit code e-mailed to the user (dev mail files: {mail_hint})")
    trader = User.objects.filter(email=DEMO_TOTP_EMAIL).first()
    if trader is not None and not TOTPDevice.objects.filter(user=trader).exists():
        device = TOTPDevice.objects.create(user=trader, name="Demo authenticator", confirmed=True)
        secret = base64.b32encode(device.bin_key).decode().rstrip("=")
        stdout.write(f"demo trader authenticator key (shown once): {secret}\n  {device.config_url}")
