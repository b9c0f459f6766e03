"""Seeds the demo: a staff user and a trader (passwords printed once, when created), then each context's demo data."""
import secrets
from importlib import import_module

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from brokerx.demo_users import DEMO_STAFF_EMAIL, DEMO_TRADER_EMAIL

# Contexts that have demo data expose `seed_demo(stdout)` in a `demo` module.
DEMO_MODULES = ("accounts.demo", "portfolios.demo", "orders.demo", "simulator.demo", "notifications.demo")


class Command(BaseCommand):
    help = "Create the demo staff user, the demo trader and each context's demo data (idempotent)."

    def handle(self, *args, **options):
        with transaction.atomic():
            self._user(DEMO_STAFF_EMAIL, staff=True)
            self._user(DEMO_TRADER_EMAIL, staff=False)
        for module_name in DEMO_MODULES:
            try:
                module = import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name is None or not module_name.startswith(exc.name):
                    raise
                continue
            module.seed_demo(self.stdout)

    def _user(self, email: str, *, staff: bool) -> None:
        User = get_user_model()
        if User.objects.filter(email=email).exists():
            self.stdout.write(f"demo {'staff' if staff else 'trader'} {email} exists "
                              f"(password shown when it was created; reset: manage.py changepassword {email})")
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_user(email=email, password=password, is_staff=staff, is_superuser=staff,
                                 first_name="Demo", last_name="Staff" if staff else "Trader",
                                 email_verified_at=timezone.now())
        self.stdout.write(self.style.SUCCESS(
            f"demo {'staff' if staff else 'trader'} created: {email} / {password}  (shown once)"))
