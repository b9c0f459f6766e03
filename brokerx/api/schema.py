"""OpenAPI descriptions of the API's authentication schemes (JWT bearer, API key, MFA'd browser session)."""
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class JWTScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.JWTAuthentication"
    name = "jwt"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "Access token from /api/v1/auth/mfa/verify (15 minutes; renew with the refresh token)."}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`ApiKey <key_id>:<secret>` (create keys at /api/v1/auth/api-keys)."}


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.OTPSessionAuthentication"
    name = "session"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid",
                "description": "The browser session after the second factor; writes need the CSRF token."}
