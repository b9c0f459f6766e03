"""Typed refusals of the watchlists context; each surface renders them in its own error shape."""


class WatchlistError(Exception):
    code = "watchlist_error"
    http_status = 422

    def __init__(self, message: str, *, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}


class WatchlistNotFound(WatchlistError):
    code = "not_found"
    http_status = 404


class WatchlistInvalid(WatchlistError):
    """Unknown symbol, a symbol twice, a name taken or blank, too many lists or symbols."""

    code = "invalid_watchlist"
    http_status = 422
