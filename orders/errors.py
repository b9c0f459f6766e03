"""Typed errors of the orders context; each carries the stable code the API returns."""


class OrderError(Exception):
    code = "order_error"
    http_status = 422

    def __init__(self, message: str, *, code: str | None = None, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.details = details or {}


class OrderRejected(OrderError):
    """A pre-trade check refused the order; nothing was written."""

    code = "order_rejected"


class OrderNotFound(OrderError):
    code = "order_not_found"
    http_status = 404


class StaleOrderVersion(OrderError):
    """The client's `version` is not the order's current one (optimistic locking)."""

    code = "stale_version"
    http_status = 409

    def __init__(self, message: str, *, current):
        super().__init__(message, details={"current_version": current.version})
        self.current = current


class OrderNotOpen(OrderError):
    code = "order_not_open"
    http_status = 409

    def __init__(self, message: str, *, current):
        super().__init__(message, details={"status": current.status})
        self.current = current


class OrderInvalid(OrderError):
    """The order request itself is malformed: not JSON, or fields missing, unknown or of the wrong form."""

    code = "validation_error"
    http_status = 400
