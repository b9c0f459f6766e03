"""Idempotent API writes: `Idempotency-Key` claimed before the view runs, its response stored and replayed.

Use on a DRF view's handler method::

    class DepositListCreate(APIView):
        @idempotent()
        def post(self, request): ...

- The key is scoped per user and endpoint ("POST /api/v1/deposits"): user B reusing user A's key is unrelated.
- The claim is an INSERT committed on its own, so a concurrent duplicate sees it and gets 409
  `idempotency_in_flight` (a claim older than IDEMPOTENCY_IN_FLIGHT_TIMEOUT_SECONDS whose owner holds no
  lock any more may be taken over).
- The view runs in one transaction with the completion of the claim: either its writes and the stored
  response commit together, or neither does (a crash leaves a claim that a retry can take over).
- Stored and replayed: 2xx and business outcomes (422). Not stored: validation failures (400) and every
  other status or exception; the claim is deleted so the client can fix the request and retry the key.
- Replays carry `Idempotent-Replayed: true`; the same key with a different body gets 422
  `idempotency_key_reused`.
- Keys are kept IDEMPOTENCY_KEY_TTL_HOURS (24 h at least); `idempotency_keys_purge` runs from beat.
"""
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable, Container
from functools import wraps

from celery import shared_task
from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone
from rest_framework.exceptions import NotAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from brokerx.api.errors import ApiError

from .models import IdempotencyKey

HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
STORED_ERROR_STATUSES = frozenset({422})


def _ttl() -> dt.timedelta:
    return dt.timedelta(hours=max(24, int(getattr(settings, "IDEMPOTENCY_KEY_TTL_HOURS", 24))))


def _in_flight_timeout() -> dt.timedelta:
    return dt.timedelta(seconds=float(getattr(settings, "IDEMPOTENCY_IN_FLIGHT_TIMEOUT_SECONDS", 60)))


def request_fingerprint(request) -> str:
    """SHA-256 of the request body, canonical JSON when it parses (key order and spacing do not matter)."""
    try:
        canonical = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str).encode()
    except (TypeError, ValueError):
        canonical = request.body
    return hashlib.sha256(canonical).hexdigest()


class _Replay(Exception):
    def __init__(self, row: IdempotencyKey):
        self.row = row


_CLAIM_SQL = """
    INSERT INTO brokerx_idempotencykey
        (user_id, key, scope, request_hash, status, claim_token, claimed_at, created_at)
    VALUES (%s, %s, %s, %s, 'in_flight', %s, %s, %s)
    ON CONFLICT (user_id, key, scope) DO NOTHING
    RETURNING id
"""


def _claim(*, user, key: str, scope: str, request_hash: str) -> tuple[int, uuid.UUID]:
    """Claim the key for this request; returns (row id, claim token) or raises _Replay / ApiError."""
    for _attempt in range(3):
        now = timezone.now()
        token = uuid.uuid4()
        # One statement, committed on its own (autocommit), so concurrent duplicates see the claim at once.
        with connection.cursor() as cursor:
            cursor.execute(_CLAIM_SQL, [user.pk, key, scope, request_hash, token, now, now])
            inserted = cursor.fetchone()
        if inserted:
            return inserted[0], token
        row = IdempotencyKey.objects.filter(user=user, key=key, scope=scope).first()
        if row is None:
            continue  # released by its owner meanwhile: claim again
        if row.request_hash != request_hash:
            raise ApiError("This Idempotency-Key was used with a different request body.",
                           code="idempotency_key_reused", status_code=422, details={"key": key})
        if row.status == IdempotencyKey.Status.COMPLETED:
            raise _Replay(row)
        if now - row.claimed_at < _in_flight_timeout():
            raise _in_flight(key)
        # A stale claim: take it over, unless its owner is still running (it holds the row lock).
        try:
            with transaction.atomic():
                stale = (IdempotencyKey.objects.select_for_update(nowait=True)
                         .filter(pk=row.pk, status=IdempotencyKey.Status.IN_FLIGHT).first())
                if stale is None:
                    continue  # completed or released meanwhile: look again
                IdempotencyKey.objects.filter(pk=row.pk).update(claim_token=token, claimed_at=now)
            return row.pk, token
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != "55P03":  # lock_not_available
                raise
            raise _in_flight(key) from exc
    raise _in_flight(key)


def _in_flight(key: str) -> ApiError:
    return ApiError("A request with this Idempotency-Key is still being processed; retry later.",
                    code="idempotency_in_flight", status_code=409, details={"key": key})


def _release(row_id: int, token: uuid.UUID) -> None:
    IdempotencyKey.objects.filter(pk=row_id, claim_token=token, status=IdempotencyKey.Status.IN_FLIGHT).delete()


def _replay(row: IdempotencyKey) -> Response:
    return Response(row.response_body, status=row.response_status, headers={REPLAY_HEADER: "true"})


def _default_should_store(status: int) -> bool:
    return 200 <= status < 300 or status in STORED_ERROR_STATUSES


def idempotent(
    *, required: bool = True, should_store: Callable[[int], bool] | None = None, scope: str | None = None,
    stored_error_statuses: Container[int] | None = None,
):
    """Decorate a DRF handler method (`post`, `patch`...) so the `Idempotency-Key` header makes it idempotent.

    `required`: answer 400 `idempotency_key_required` without the header (else run the view plainly).
    `scope`: defaults to "METHOD path". `should_store(status)`: which outcomes are stored and replayed.
    """
    if should_store is None:
        errors = STORED_ERROR_STATUSES if stored_error_statuses is None else stored_error_statuses

        def should_store(status: int) -> bool:
            return 200 <= status < 300 or status in errors

    def decorator(handler):
        @wraps(handler)
        def wrapper(view, request, *args, **kwargs):
            if not request.user or not request.user.is_authenticated:
                raise NotAuthenticated()  # keys are scoped per user: only for views that require one
            key = request.headers.get(HEADER)
            if key is None:
                if required:
                    raise ApiError(f"The {HEADER} header is required for this request.",
                                   code="idempotency_key_required", status_code=400)
                return handler(view, request, *args, **kwargs)
            key = key.strip()
            if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
                raise ApiError(f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable characters.",
                               code="idempotency_key_invalid", status_code=400)
            endpoint = scope or f"{request.method} {request.path}"
            try:
                row_id, token = _claim(user=request.user, key=key, scope=endpoint,
                                       request_hash=request_fingerprint(request))
            except _Replay as replay:
                return _replay(replay.row)

            stored = False
            try:
                with transaction.atomic():
                    # Holding the claim's row lock tells a would-be taker-over that this owner is alive.
                    if not IdempotencyKey.objects.select_for_update().filter(pk=row_id, claim_token=token).exists():
                        raise _in_flight(key)  # taken over after our claim went stale
                    try:
                        response = handler(view, request, *args, **kwargs)
                    except Exception as exc:
                        # Renders DRF/API errors as the client will see them; re-raises real bugs.
                        response = view.handle_exception(exc)
                    if should_store(response.status_code):
                        body = json.loads(JSONRenderer().render(response.data)) if response.data is not None else None
                        IdempotencyKey.objects.filter(pk=row_id).update(
                            status=IdempotencyKey.Status.COMPLETED, response_status=response.status_code,
                            response_body=body, completed_at=timezone.now())
                        stored = True
                    else:
                        transaction.set_rollback(True)  # never a partial write
            finally:
                if not stored:
                    try:
                        _release(row_id, token)
                    except IntegrityError:
                        pass
            return response

        return wrapper

    return decorator


def idempotency_keys_purge(*, older_than: dt.timedelta | None = None) -> int:
    """Delete keys created before now - max(24 h, IDEMPOTENCY_KEY_TTL_HOURS); returns how many."""
    cutoff = timezone.now() - max(older_than or _ttl(), dt.timedelta(hours=24))
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted


@shared_task(name="brokerx.idempotency_keys_purge", ignore_result=True)
def idempotency_keys_purge_task() -> int:
    return idempotency_keys_purge()
