"""Accounts API routes under /api/v1/auth/."""
from django.urls import path

from . import views

urlpatterns = [
    path("auth/register", views.RegisterView.as_view(), name="auth-register"),
    path("auth/verify-email", views.VerifyEmailView.as_view(), name="auth-verify-email"),
    path("auth/verify-email/resend", views.ResendVerificationView.as_view(), name="auth-verify-email-resend"),
    path("auth/login", views.LoginView.as_view(), name="auth-login"),
    path("auth/mfa/email", views.MfaEmailView.as_view(), name="auth-mfa-email"),
    path("auth/mfa/verify", views.MfaVerifyView.as_view(), name="auth-mfa-verify"),
    path("auth/mfa/totp", views.TotpView.as_view(), name="auth-mfa-totp"),
    path("auth/mfa/totp/confirm", views.TotpConfirmView.as_view(), name="auth-mfa-totp-confirm"),
    path("auth/token/refresh", views.TokenRefreshView.as_view(), name="auth-token-refresh"),
    path("auth/logout", views.LogoutView.as_view(), name="auth-logout"),
    path("auth/me", views.MeView.as_view(), name="auth-me"),
    path("auth/login-events", views.LoginEventsView.as_view(), name="auth-login-events"),
    path("auth/api-keys", views.ApiKeyListView.as_view(), name="auth-api-keys"),
    path("auth/api-keys/<str:key_id>", views.ApiKeyDetailView.as_view(), name="auth-api-key-detail"),
]
