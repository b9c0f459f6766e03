"""Accounts API: sign-up, e-mail verification, two-step sign-in to JWT, token refresh, TOTP, API keys."""
from django.core.exceptions import ValidationError as DjangoValidationError
from django_otp.plugins.otp_totp.models import TOTPDevice
from drf_spectacular.utils import extend_schema
from rest_framework import serializers as drf_serializers
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from brokerx import ratelimit
from brokerx.api.errors import ApiError
from brokerx.api.schema import refusals
from brokerx.ratelimit import IpRateThrottle, RedisRateThrottle

from .. import selectors, services
from ..permissions import IsInteractiveUser
from . import serializers as s

NEUTRAL_SIGNUP_MESSAGE = ("If this address can be used, we have sent a link to it. "
                          "Open it to verify your e-mail address.")
NEUTRAL_RESEND_MESSAGE = "If this address belongs to an unverified account, a new link is on its way."


def client_meta(request) -> tuple[str, str]:
    return ratelimit.client_ip(request._request), request.META.get("HTTP_USER_AGENT", "")[:300]


def _valid(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class _Anonymous(APIView):
    """Endpoints used before sign-in: no authentication (and so no CSRF), limited per client IP."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [IpRateThrottle]

    def get_authenticate_header(self, request):
        # Without one DRF would turn a rejected token's 401 into a 403.
        return 'Bearer realm="api"'


class _Interactive(APIView):
    """Account settings: a person signed in with MFA (JWT or session), never an API key."""

    permission_classes = [IsInteractiveUser]
    throttle_classes = [RedisRateThrottle]
    throttle_rate = "30/min"


class RegisterView(_Anonymous):
    throttle_scope, throttle_rate = "auth-register", "10/hour"

    @extend_schema(request=s.RegisterIn, responses={202: s.MessageOut}, tags=["auth"])
    def post(self, request):
        data = _valid(s.RegisterIn, request)
        try:
            services.user_register(**data)
        except DjangoValidationError as exc:
            raise drf_serializers.ValidationError({"password": list(exc.messages)}) from exc
        # The same answer whether or not the address was already registered.
        return Response({"message": NEUTRAL_SIGNUP_MESSAGE}, status=status.HTTP_202_ACCEPTED)


class VerifyEmailView(_Anonymous):
    throttle_scope, throttle_rate = "auth-verify-email", "30/hour"

    @extend_schema(request=s.VerifyEmailIn, responses={200: s.MessageOut}, tags=["auth"])
    def post(self, request):
        services.email_verify(token=_valid(s.VerifyEmailIn, request)["token"])
        return Response({"message": "Your e-mail address is verified."})


class ResendVerificationView(_Anonymous):
    throttle_scope, throttle_rate = "auth-verify-email-resend", "10/hour"

    @extend_schema(request=s.ResendVerificationIn, responses={202: s.MessageOut}, tags=["auth"])
    def post(self, request):
        email = _valid(s.ResendVerificationIn, request)["email"].strip().lower()
        # Per address as well as per IP; applies to any address, registered or not, so it reveals nothing.
        usage = ratelimit.hit(f"auth-resend-addr:{email}", ratelimit.parse_rate("3/hour"))
        if not usage.allowed:
            raise ratelimit.RateLimited(usage, scope="auth-verify-email-resend")
        services.email_verification_resend(email=email)
        return Response({"message": NEUTRAL_RESEND_MESSAGE}, status=status.HTTP_202_ACCEPTED)


class LoginView(_Anonymous):
    throttle_scope, throttle_rate = "auth-login", "30/min"

    @extend_schema(request=s.LoginIn, responses={200: s.LoginChallengeOut} | refusals(401, 403), tags=["auth"],
                   description="Step 1 of 2: the password. Answer the returned challenge at auth/mfa/verify.")
    def post(self, request):
        data = _valid(s.LoginIn, request)
        ip, user_agent = client_meta(request)
        challenge = services.login_start(email=data["email"], password=data["password"], ip=ip, user_agent=user_agent)
        return Response({"challenge_id": str(challenge.id), "methods": challenge.methods,
                         "email_code_sent": challenge.email_code_sent, "expires_at": challenge.expires_at})


class MfaEmailView(_Anonymous):
    throttle_scope, throttle_rate = "auth-mfa-email", "10/min"

    @extend_schema(request=s.MfaEmailIn, responses={202: s.MessageOut} | refusals(401), tags=["auth"])
    def post(self, request):
        services.login_mfa_email_send(challenge_id=_valid(s.MfaEmailIn, request)["challenge_id"])
        return Response({"message": "A sign-in code is on its way to your e-mail address."},
                        status=status.HTTP_202_ACCEPTED)


class MfaVerifyView(_Anonymous):
    throttle_scope, throttle_rate = "auth-mfa-verify", "30/min"

    @extend_schema(request=s.MfaVerifyIn, responses={200: s.TokenPairOut} | refusals(401, 403), tags=["auth"],
                   description="Step 2 of 2: the TOTP or e-mail code. Returns access + refresh JWTs.")
    def post(self, request):
        data = _valid(s.MfaVerifyIn, request)
        ip, user_agent = client_meta(request)
        user, _device = services.login_mfa_verify(challenge_id=data["challenge_id"], code=data["code"],
                                                  method=data.get("method"), ip=ip, user_agent=user_agent)
        return Response(services.jwt_issue(user=user))


class TokenRefreshView(_Anonymous):
    throttle_scope, throttle_rate = "auth-token-refresh", "60/min"

    @extend_schema(request=s.RefreshIn, responses={200: s.TokenPairOut} | refusals(401, 403), tags=["auth"],
                   description="Rotates: the refresh token sent is spent. Sending a spent one revokes the sign-in.")
    def post(self, request):
        return Response(services.token_refresh(refresh=_valid(s.RefreshIn, request)["refresh"]))


class LogoutView(_Anonymous):
    throttle_scope, throttle_rate = "auth-logout", "60/min"

    @extend_schema(request=s.RefreshIn, responses={204: None} | refusals(401), tags=["auth"])
    def post(self, request):
        services.token_family_revoke(refresh=_valid(s.RefreshIn, request)["refresh"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    throttle_classes = [RedisRateThrottle]
    throttle_rate = "120/min"

    @extend_schema(responses={200: s.MeOut}, tags=["auth"])
    def get(self, request):
        user = request.user
        return Response({
            "id": user.pk, "email": user.email, "first_name": user.first_name, "last_name": user.last_name,
            "email_verified": user.is_email_verified, "locked": user.is_locked,
            "can_trade": selectors.user_can_trade(user), "mfa_methods": selectors.user_mfa_methods(user=user),
            "date_joined": user.date_joined,
        })


class LoginEventsView(_Interactive):
    @extend_schema(responses={200: s.LoginEventOut(many=True)}, tags=["auth"])
    def get(self, request):
        return Response(s.LoginEventOut(selectors.login_events_for_user(user=request.user), many=True).data)


class TotpView(_Interactive):
    throttle_scope = "auth-totp"

    @extend_schema(responses={200: s.TotpStateOut}, tags=["auth"])
    def get(self, request):
        devices = TOTPDevice.objects.filter(user=request.user)
        return Response({"confirmed": devices.filter(confirmed=True).exists(),
                         "pending": devices.filter(confirmed=False).exists()})

    @extend_schema(request=None, responses={201: s.TotpProvisioningOut} | refusals(409), tags=["auth"],
                   description="Start setting up an authenticator app; confirm with a first code at "
                               "auth/mfa/totp/confirm.")
    def post(self, request):
        provisioning = services.totp_provision_start(user=request.user)
        return Response({"secret": provisioning.secret, "otpauth_uri": provisioning.otpauth_uri,
                         "qr_data_uri": provisioning.qr_data_uri}, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.CodeIn, responses={204: None} | refusals(400, 404), tags=["auth"],
                   description="Remove the authenticator app; a current code from it is required.")
    def delete(self, request):
        services.totp_remove(user=request.user, code=_valid(s.CodeIn, request)["code"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class TotpConfirmView(_Interactive):
    throttle_scope = "auth-totp"

    @extend_schema(request=s.CodeIn, responses={200: s.TotpStateOut} | refusals(404), tags=["auth"])
    def post(self, request):
        services.totp_provision_confirm(user=request.user, code=_valid(s.CodeIn, request)["code"])
        return Response({"confirmed": True, "pending": False})


class ApiKeyListView(_Interactive):
    throttle_scope = "auth-api-keys"

    @extend_schema(responses={200: s.ApiKeyOut(many=True)}, tags=["auth"])
    def get(self, request):
        return Response(s.ApiKeyOut(selectors.api_keys_for_user(user=request.user), many=True).data)

    @extend_schema(request=s.ApiKeyCreateIn, responses={201: s.ApiKeyCreatedOut}, tags=["auth"])
    def post(self, request):
        data = _valid(s.ApiKeyCreateIn, request)
        created = services.api_key_create(user=request.user, name=data["name"], scope=data["scope"])
        body = s.ApiKeyOut(created.api_key).data | {"secret": created.secret}
        return Response(body, status=status.HTTP_201_CREATED)


class ApiKeyDetailView(_Interactive):
    throttle_scope = "auth-api-keys"

    def _get(self, request, key_id: str):
        api_key = selectors.api_key_get_for_user(user=request.user, key_id=key_id)
        if api_key is None:  # someone else's key looks exactly like a missing one
            raise ApiError("No such API key.", code="not_found", status_code=404)
        return api_key

    @extend_schema(responses={200: s.ApiKeyOut}, tags=["auth"])
    def get(self, request, key_id: str):
        return Response(s.ApiKeyOut(self._get(request, key_id)).data)

    @extend_schema(responses={200: s.ApiKeyOut}, tags=["auth"], description="Revoke the key (idempotent).")
    def delete(self, request, key_id: str):
        return Response(s.ApiKeyOut(services.api_key_revoke(api_key=self._get(request, key_id))).data)


