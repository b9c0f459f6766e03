"""OpenAPI security schemes of the accounts authentication classes (registered with drf-spectacular on import)."""
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class JWTScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.JWTAuthentication"
    name = "jwt"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "Access token from auth/mfa/verify or auth/token/refresh."}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`ApiKey <key_id>:<secret>` (create keys at auth/api-keys)."}


class OTPSessionScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.OTPSessionAuthentication"
    name = "session"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid",
                "description": "Browser session after the two-step sign-in (CSRF token required for writes)."}
