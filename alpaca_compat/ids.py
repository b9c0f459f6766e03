"""UUIDs for BrokerX integer ids, as the Alpaca API shows them: deterministic, reversible, no storage.

Layout (an RFC 9562 version-8 "custom" UUID): `KKKKKKKK-0000-8000-8000-NNNNNNNNNNNN`, where K is the
kind of object (order, asset, account, watchlist, activity) and N the object's primary key in hex (48 bits). The SDK
only needs a syntactically valid UUID; the kind keeps an order id from ever being read as an asset id.
"""
import uuid
from enum import IntEnum

_ID_BITS = 48
_MAX_ID = (1 << _ID_BITS) - 1
_MIDDLE = 0x0000_8000_8000  # the version (8) and variant (0b10) nibbles, nothing else


class Kind(IntEnum):
    ORDER = 0x0B0D0001
    ASSET = 0x0B0D0002
    ACCOUNT = 0x0B0D0003
    WATCHLIST = 0x0B0D0004
    ACTIVITY = 0x0B0D0005


def encode(kind: Kind, pk: int) -> uuid.UUID:
    if not 0 < pk <= _MAX_ID:
        raise ValueError(f"id {pk} does not fit in {_ID_BITS} bits")
    return uuid.UUID(int=(int(kind) << 96) | (_MIDDLE << _ID_BITS) | pk)


def encode_str(kind: Kind, pk: int) -> str:
    return str(encode(kind, pk))


def decode(kind: Kind, value) -> int | None:
    """The primary key inside `value` (a UUID or its string), or None if it is not one of ours of this kind."""
    try:
        parsed = value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (ValueError, AttributeError, TypeError):
        return None
    number = parsed.int
    if number >> 96 != int(kind) or (number >> _ID_BITS) & ((1 << 48) - 1) != _MIDDLE:
        return None
    return (number & _MAX_ID) or None
