"""Request and response shapes of the accounts API."""
from django.contrib.auth.password_validation import password_validators_help_texts
from rest_framework import serializers

from ..models import ApiKey, ApiKeyScope, LoginEvent, MfaMethod


class RegisterIn(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, write_only=True,
                                     help_text=" ".join(password_validators_help_texts()))
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")


class MessageOut(serializers.Serializer):
    message = serializers.CharField()


class VerifyEmailIn(serializers.Serializer):
    token = serializers.CharField(max_length=200)


class ResendVerificationIn(serializers.Serializer):
    email = serializers.EmailField(max_length=254)


class LoginIn(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, write_only=True)


class LoginChallengeOut(serializers.Serializer):
    challenge_id = serializers.UUIDField()
    methods = serializers.ListField(child=serializers.ChoiceField(choices=MfaMethod.choices))
    email_code_sent = serializers.BooleanField()
    expires_at = serializers.DateTimeField()


class MfaEmailIn(serializers.Serializer):
    challenge_id = serializers.CharField(max_length=64)


class MfaVerifyIn(serializers.Serializer):
    challenge_id = serializers.CharField(max_length=64)
    code = serializers.CharField(max_length=16)
    method = serializers.ChoiceField(choices=MfaMethod.choices, required=False)


class TokenPairOut(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField(help_text="Seconds until the access token expires.")


class RefreshIn(serializers.Serializer):
    refresh = serializers.CharField(max_length=2000)


class CodeIn(serializers.Serializer):
    code = serializers.CharField(max_length=16)


class TotpProvisioningOut(serializers.Serializer):
    secret = serializers.CharField()
    otpauth_uri = serializers.CharField()
    qr_data_uri = serializers.CharField(help_text="SVG QR code of otpauth_uri, as a data: URI.")


class TotpStateOut(serializers.Serializer):
    confirmed = serializers.BooleanField()
    pending = serializers.BooleanField(help_text="Provisioning started and awaiting its first code.")


class MeOut(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    email_verified = serializers.BooleanField()
    locked = serializers.BooleanField()
    can_trade = serializers.BooleanField()
    mfa_methods = serializers.ListField(child=serializers.CharField())
    date_joined = serializers.DateTimeField()


class ApiKeyOut(serializers.ModelSerializer):
    active = serializers.BooleanField(source="is_active")

    class Meta:
        model = ApiKey
        fields = ("key_id", "name", "scope", "active", "created_at", "last_used_at", "revoked_at")


class ApiKeyCreateIn(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scope = serializers.ChoiceField(choices=ApiKeyScope.choices, default=ApiKeyScope.READ)


class ApiKeyCreatedOut(ApiKeyOut):
    secret = serializers.CharField(help_text="Shown once. Send as `Authorization: ApiKey <key_id>:<secret>`.")

    class Meta(ApiKeyOut.Meta):
        fields = (*ApiKeyOut.Meta.fields, "secret")


class LoginEventOut(serializers.ModelSerializer):
    class Meta:
        model = LoginEvent
        fields = ("created_at", "ip", "user_agent", "success", "reason", "method")
