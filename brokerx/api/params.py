"""Query parameters the APIs share, refused in the documented error shape (400 `validation_error`)."""
from datetime import datetime

from django.utils.dateparse import parse_datetime

from .errors import ApiError


def moment_param(request, name: str) -> datetime | None:
    """An ISO 8601 date-time with a UTC offset, or None when the parameter is absent or empty."""
    raw = request.query_params.get(name)
    if not raw:
        return None
    value = parse_datetime(raw)
    if value is None or value.tzinfo is None:
        raise ApiError(f"{name} must be an ISO 8601 date-time with a UTC offset.", code="validation_error",
                       details={name: raw})
    return value
