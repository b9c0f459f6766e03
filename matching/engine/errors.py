"""Typed errors the order-book core raises for input that must never reach it."""


class EngineError(ValueError):
    """Base of every error raised by matching.engine."""


class InvalidOrder(EngineError):
    """A submit or restore whose fields do not describe a valid order; the book is left unchanged."""


class DuplicateOrderId(InvalidOrder):
    """The order id is already live in this book."""


class OffGridError(EngineError):
    """A price or quantity that is not a positive whole multiple of the symbol's tick or lot size."""
