"""Browser routes of the accounts context, at the site root."""
from django.urls import include, path

from . import views

_patterns = [
    path("signup/", views.signup, name="signup"),
    path("signup/done/", views.signup_done, name="signup-done"),
    path("verify-email/resend/", views.verify_email_resend, name="verify-email-resend"),
    path("verify-email/<str:token>/", views.verify_email, name="verify-email"),
    path("login/", views.login_view, name="login"),
    path("login/mfa/", views.login_mfa, name="login-mfa"),
    path("logout/", views.logout_view, name="logout"),
    path("settings/security/", views.security, name="security"),
    path("settings/api-keys/", views.api_keys, name="api-keys"),
]

urlpatterns = [path("", include((_patterns, "accounts")))]
