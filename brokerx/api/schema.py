"""The OpenAPI document's error answers, decided once for every native operation from what the operation is.

Views document their successful answers (and, where only the view can know it, a domain refusal such as 409
`stale_version`); this AutoSchema adds the error answers every operation can give, each with the native error body
(`brokerx/api/errors.py`), judged from the operation itself:

- 400 when it reads a body, query or header parameters (validation, malformed JSON);
- 401 and 403 when the view authenticates credentials: a wrong or revoked one is refused (even where none is
  needed), and so is a locked or inactive account; where a caller is needed, account state, API-key scope and
  CSRF too;
- 404 when the path names a resource;
- 409 and 422 when it takes an `Idempotency-Key` (a key still in flight; a key reused with another body);
- 429 when the view is rate limited (throttle classes), with `Retry-After`;
- 503 on every operation, with `Retry-After`: the database or Redis is unavailable.

A view adds the refusals only it knows of with `refusals(...)`, e.g. `responses={200: Out} | refusals(401, 409)`.
Rate-limited operations also document the optional `X-RateLimit-*` headers on every answer.
"""
from drf_spectacular.openapi import AutoSchema as BaseAutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from brokerx.idempotency import HEADER as IDEMPOTENCY_HEADER
from brokerx.idempotency import MAX_KEY_LENGTH

API_PREFIX = "/api/v1/"


class ErrorSerializer(serializers.Serializer):
    """Every 4xx and 5xx answer of the native API."""

    code = serializers.CharField(help_text="Stable, machine-readable reason, e.g. `validation_error`.")
    message = serializers.CharField(help_text="A sentence for people.")
    details = serializers.DictField(help_text="Reason-specific data, e.g. the invalid fields; may be empty.")


# Status -> (description, an example body). The examples are real answers of the API.
ERRORS: dict[int, tuple[str, dict]] = {
    400: ("The request is malformed or has invalid fields.",
          {"code": "validation_error", "message": "The request has invalid fields.",
           "details": {"amount": ["A valid number is required."]}}),
    401: ("No valid credentials: missing, wrong, expired or revoked.",
          {"code": "not_authenticated", "message": "Authentication credentials were not provided.", "details": {}}),
    403: ("The caller may not do this: account not verified, locked or inactive, API key without the scope, or "
          "account settings with an API key.",
          {"code": "email_not_verified", "message": "Verify your e-mail address before trading or depositing.",
           "details": {}}),
    404: ("No such resource, or not the caller's.",
          {"code": "not_found", "message": "Not found.", "details": {}}),
    409: ("Conflict with the current state, or a request with this Idempotency-Key still running.",
          {"code": "idempotency_in_flight",
           "message": "A request with this Idempotency-Key is still being processed; retry later.",
           "details": {"key": "3f0c2b9e-8d51-4c1e-9a47-1f2d6b7c8e90"}}),
    422: ("Refused by a business rule, or the Idempotency-Key was used with another body.",
          {"code": "idempotency_key_reused", "message": "This Idempotency-Key was used with a different request "
                                                        "body.",
           "details": {"key": "3f0c2b9e-8d51-4c1e-9a47-1f2d6b7c8e90"}}),
    429: ("Rate limit reached; retry after `Retry-After` seconds.",
          {"code": "rate_limited", "message": "Rate limit exceeded: 30 requests per window. Retry in 12 s.",
           "details": {"retry_after": 12, "limit": 30, "scope": "auth-login"}}),
    503: ("A service the platform depends on (database, Redis) is unavailable; retry after `Retry-After` seconds.",
          {"code": "service_unavailable", "message": "A service is unavailable for a moment. Retry in 2 s.",
           "details": {"request_id": "4f6c1e0a9b2d4c7e8f10a2b3c4d5e6f7", "retry_after": 2}}),
}



def refusals(*statuses: int) -> dict[int, OpenApiResponse]:
    """Error answers a view documents beyond those derived from the operation; the AutoSchema gives them the native
    error body, its example and headers."""
    return {status: OpenApiResponse(description=ERRORS[status][0]) for status in statuses}


# Printable characters, not blank at either end (the key is stripped), at most MAX_KEY_LENGTH.
IDEMPOTENCY_KEY_SCHEMA = {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH,
                          "pattern": r"^[!-~](?:[ -~]*[!-~])?$"}

RETRY_AFTER = OpenApiParameter(
    "Retry-After", OpenApiTypes.INT, OpenApiParameter.HEADER, response=[429, 503],
    description="Seconds to wait before retrying.")
RATE_LIMIT_HEADERS = [
    OpenApiParameter("X-RateLimit-Limit", OpenApiTypes.INT, OpenApiParameter.HEADER, response=True,
                     description="Requests allowed in the current window."),
    OpenApiParameter("X-RateLimit-Remaining", OpenApiTypes.INT, OpenApiParameter.HEADER, response=True,
                     description="Requests left in the current window."),
    OpenApiParameter("X-RateLimit-Reset", OpenApiTypes.INT, OpenApiParameter.HEADER, response=True,
                     description="Seconds until the window resets."),
]


class AutoSchema(BaseAutoSchema):
    """drf-spectacular's AutoSchema with the native API's error answers and response headers added."""

    def _native(self) -> bool:
        return self.path.startswith(API_PREFIX)

    def _rate_limited(self) -> bool:
        """Throttled by DRF, or limited in the view (order entry), which then documents its 429."""
        declared = self.get_response_serializers()
        return bool(getattr(self.view, "throttle_classes", None)) or (isinstance(declared, dict) and 429 in declared)

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if self._native():
            parameters.append(RETRY_AFTER)
            if self._rate_limited():
                parameters += RATE_LIMIT_HEADERS
        return parameters

    def error_statuses(self, operation: dict) -> set[int]:
        """The error answers this operation can give, from its method, parameters, authentication and limits."""
        statuses = {503}
        parameters = operation.get("parameters", [])
        if "requestBody" in operation or any(p["in"] in ("query", "header") for p in parameters):
            statuses.add(400)
        if self.view.get_authenticators():
            # Credentials sent are checked even where none are needed: wrong ones answer 401, a locked or inactive
            # account's 403; where a caller is needed, so do account state, API-key scope and CSRF.
            statuses |= {401, 403}
        if any(p["in"] == "path" for p in parameters):
            statuses.add(404)
        if any(p["in"] == "header" and p["name"] == IDEMPOTENCY_HEADER for p in parameters):
            statuses |= {409, 422}
        if self._rate_limited():
            statuses.add(429)
        return statuses

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None or not self._native():
            return operation
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "header" and parameter["name"] == IDEMPOTENCY_HEADER:
                parameter["schema"] = IDEMPOTENCY_KEY_SCHEMA  # what brokerx.idempotency accepts
        error = self.resolve_serializer(ErrorSerializer, "response").ref
        responses = operation["responses"]
        declared = {int(code) for code in responses if code.isdigit() and int(code) >= 400}
        for status in sorted(self.error_statuses(operation) | declared):
            description, example = ERRORS.get(status, ("Error.", None))
            response = responses.setdefault(str(status), {"description": description})
            if "content" not in response:
                media = {"schema": error}
                if example is not None:
                    media["examples"] = {example["code"]: {"value": example}}
                response["content"] = {"application/json": media}
            headers = self._get_response_headers_for_code(str(status))
            if headers:
                response["headers"] = headers
        operation["responses"] = dict(sorted(responses.items()))
        return operation
