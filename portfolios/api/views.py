"""Views of the portfolios API: parse, authorize, call a service or selector, answer."""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination, LimitOffsetPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from brokerx.api.errors import ApiError
from brokerx.idempotency import idempotent

from .. import selectors, services
from ..errors import InsufficientFunds, LedgerError, LimitExceeded
from ..models import Withdrawal
from .permissions import CanTrade
from .serializers import (
    ActivityFilterSerializer,
    ActivitySerializer,
    DepositCreateSerializer,
    DepositSerializer,
    PortfolioSerializer,
    WithdrawalCreateSerializer,
    WithdrawalSerializer,
)

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER, required=True,
    description="Unique per request you mean to make once (e.g. a UUID), scoped to you and this endpoint and kept "
                "24 h. A retry with the same key and body replays the first answer (header `Idempotent-Replayed: "
                "true`); the same key with another body gets 422 `idempotency_key_reused`; while the first request "
                "is still running, 409 `idempotency_in_flight`. Requests failing validation are not remembered.",
)


def _business_error(exc: LedgerError) -> ApiError:
    """Service refusals are business outcomes (422): stored and replayed under their Idempotency-Key."""
    return ApiError(exc.message, code=exc.code, status_code=422, details=exc.details)


class MoneyWritePermissions:
    def get_permissions(self):
        if self.request.method == "POST":
            return [IsAuthenticated(), CanTrade()]
        return [IsAuthenticated()]


class DepositListCreateView(MoneyWritePermissions, APIView):
    pagination_class = LimitOffsetPagination  # declared on the view so the OpenAPI document shows the page

    @extend_schema(operation_id="deposits_list", responses={200: DepositSerializer(many=True)})
    def get(self, request):
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.deposits_for_user(request.user), request, view=self)
        return paginator.get_paginated_response(DepositSerializer(page, many=True).data)

    @extend_schema(
        operation_id="deposits_create", parameters=[IDEMPOTENCY_KEY], request=DepositCreateSerializer,
        responses={201: DepositSerializer},
        description="Start a deposit through the payment gateway. It is `pending` (not buying power) until the "
                    "provider settles it, a few seconds later with the simulated provider, then `settled`; a "
                    "declined deposit becomes `failed` and its pending cash is reversed. Limits per deposit and "
                    "per day answer 422 `limit_exceeded`.",
    )
    @idempotent()
    def post(self, request):
        data = DepositCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            deposit = services.deposit_create(user=request.user, amount=data.validated_data["amount"],
                                              simulate=data.validated_data.get("simulate"))
        except LimitExceeded as exc:
            raise _business_error(exc) from exc
        return Response(DepositSerializer(deposit).data, status=status.HTTP_201_CREATED)


class DepositDetailView(APIView):
    @extend_schema(operation_id="deposits_retrieve", responses={200: DepositSerializer})
    def get(self, request, deposit_id: int):
        deposit = selectors.deposits_for_user(request.user).filter(pk=deposit_id).first()
        if deposit is None:
            raise ApiError("No such deposit.", code="not_found", status_code=404)
        return Response(DepositSerializer(deposit).data)


class WithdrawalListCreateView(MoneyWritePermissions, APIView):
    pagination_class = LimitOffsetPagination

    @extend_schema(operation_id="withdrawals_list", responses={200: WithdrawalSerializer(many=True)})
    def get(self, request):
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.withdrawals_for_user(request.user), request, view=self)
        return paginator.get_paginated_response(WithdrawalSerializer(page, many=True).data)

    @extend_schema(
        operation_id="withdrawals_create", parameters=[IDEMPOTENCY_KEY], request=WithdrawalCreateSerializer,
        responses={
            201: OpenApiResponse(WithdrawalSerializer, description="Paid out: status `completed`."),
            202: OpenApiResponse(
                WithdrawalSerializer,
                description="Above the approval threshold: status `pending_review`. The amount is held (it leaves "
                            "available cash and buying power, and shows as `cash_held` in the portfolio) until a "
                            "member of staff approves it (`completed`, paid out) or rejects it (`rejected`, the "
                            "hold goes back to available cash). Follow it with GET withdrawals."),
        },
        description="Pay cash out from available cash (never reserved or pending cash). A withdrawal above the "
                    "approval threshold (WITHDRAWAL_APPROVAL_THRESHOLD, 10,000 by default) is accepted for review "
                    "and answered 202 `pending_review` instead of 201. Not enough available cash answers 422 "
                    "`insufficient_funds`; limits answer 422 `limit_exceeded`.",
    )
    @idempotent()
    def post(self, request):
        data = WithdrawalCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            withdrawal = services.withdrawal_create(user=request.user, amount=data.validated_data["amount"])
        except (InsufficientFunds, LimitExceeded) as exc:
            raise _business_error(exc) from exc
        answer = (status.HTTP_202_ACCEPTED if withdrawal.status == Withdrawal.Status.PENDING_REVIEW
                  else status.HTTP_201_CREATED)
        return Response(WithdrawalSerializer(withdrawal).data, status=answer)


class PortfolioView(APIView):
    @extend_schema(operation_id="portfolio_retrieve", responses={200: PortfolioSerializer})
    def get(self, request):
        return Response(PortfolioSerializer(selectors.portfolio_for_user(request.user)).data)


class ActivityPagination(CursorPagination):
    ordering = "-id"
    page_size = 50
    max_page_size = 500
    page_size_query_param = "limit"

    def decode_cursor(self, request):
        # DRF answers a cursor it cannot read with 404; it is a malformed parameter, not a missing resource.
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ApiError("The cursor is not one this API gave out.", code="invalid_cursor",
                           details={"cursor": request.query_params.get(self.cursor_query_param)}) from None


class ActivityListView(APIView):
    pagination_class = ActivityPagination

    @extend_schema(operation_id="activities_list", parameters=[ActivityFilterSerializer],
                   responses={200: ActivitySerializer(many=True)})
    def get(self, request):
        filters = ActivityFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        query = selectors.activities_for_user(
            request.user, types=filters.validated_data.get("type"), since=filters.validated_data.get("since"),
            until=filters.validated_data.get("until"))
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(query, request, view=self)
        return paginator.get_paginated_response(ActivitySerializer(page, many=True).data)
