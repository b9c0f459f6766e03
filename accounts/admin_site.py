"""The back office: Django's admin reachable only by active, unlocked staff whose session passed a second factor."""
from urllib.parse import urlencode

from django.http import HttpResponseRedirect
from django.urls import reverse
from django_otp.admin import OTPAdminSite


class BrokerXAdminSite(OTPAdminSite):
    site_header = "BrokerX back office"
    site_title = "BrokerX back office"
    index_title = "Operations"

    def __init__(self, name: str = "admin"):
        # Named "admin" (not django-otp's "otpadmin") so `reverse("admin:...")` keeps working everywhere.
        super().__init__(name)

    def has_permission(self, request) -> bool:
        user = request.user
        return (
            user.is_active
            and user.is_staff
            and getattr(user, "locked_at", None) is None
            and callable(getattr(user, "is_verified", None))
            and user.is_verified()
        )

    def login(self, request, extra_context=None):
        # One sign-in path for everybody (password, then TOTP or e-mail code): the site's own login pages.
        next_url = request.GET.get("next") or reverse("admin:index", current_app=self.name)
        return HttpResponseRedirect(f"{reverse('accounts:login')}?{urlencode({'next': next_url})}")
