"""Django's admin app with the MFA-guarded site as `admin.site`, so every context's registrations are guarded."""
from django.contrib.admin.apps import AdminConfig


class OTPAdminConfig(AdminConfig):
    default_site = "accounts.admin_site.BrokerXAdminSite"
