"""Views of the portfolios API: parse, authorize, call a service or selector, answer."""
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination, LimitOffsetPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from brokerx.api.errors import ApiError
from brokerx.api.params import moment_param
from brokerx.api.schema import refusals
from brokerx.idempotency import idempotent

from .. import history, selectors, services
from ..errors import InsufficientFunds, LedgerError, LimitExceeded
from ..models import Withdrawal
from ..statement_files import statement_csv, statement_filename, statement_pdf
from ..statements import InvalidMonth, statement_for_user
from .permissions import CanTrade
from .serializers import (
    ActivityFilterSerializer,
    ActivitySerializer,
    DepositCreateSerializer,
    DepositSerializer,
    PortfolioHistorySerializer,
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


HISTORY_PARAMETERS = [
    OpenApiParameter("period", OpenApiTypes.STR, description="How far back: a number and D, W, M (30 days) or A "
                     "(365 days), e.g. 1D, 1W, 1M, 1A (default 1M); or `all`, from the opening of the account."),
    OpenApiParameter("timeframe", OpenApiTypes.STR, enum=list(history.TIMEFRAMES),
                     description="Length of each point (default after the period: 1Min below 7 days, 15Min below 30, "
                                 "else 1D). At most 10,000 points."),
    OpenApiParameter("start", OpenApiTypes.DATETIME, description="Window start (with a UTC offset)."),
    OpenApiParameter("end", OpenApiTypes.DATETIME, description="Window end (default now)."),
]


class PortfolioHistoryView(APIView):
    @extend_schema(operation_id="portfolio_history", parameters=HISTORY_PARAMETERS,
                   responses={200: PortfolioHistorySerializer} | refusals(400),
                   description="Your equity over time, computed from the ledger and the one-minute bars when asked "
                               "(the same computation as Alpaca's `/v2/account/portfolio/history`, in its shape). A "
                               "period, timeframe or range that names no window answers 400 `invalid_history_window`.")
    def get(self, request):
        period = request.query_params.get("period")
        start, end = moment_param(request, "start"), moment_param(request, "end")
        if period == "all":
            period, start = None, start or request.user.date_joined
        try:
            window = history.window_from(period=period, timeframe=request.query_params.get("timeframe"),
                                         start=start, end=end)
        except history.InvalidWindow as exc:
            raise ApiError(exc.message, code="invalid_history_window", status_code=400,
                           details={k: v for k, v in request.query_params.items()
                                    if k in ("period", "timeframe", "start", "end")}) from exc
        return Response(history.portfolio_history(request.user, window))


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


MONTH = OpenApiParameter("month", OpenApiTypes.STR, OpenApiParameter.PATH, pattern=r"^\d{4}-\d{2}$",
                         description="Calendar month (UTC), `YYYY-MM`; not one that has not begun yet.")


class StatementView(APIView):
    """The requester's own statement of a month: the user is always request.user, so there is no object to guess."""

    extension = ""
    media_type = ""

    def render(self, statement) -> bytes | str:
        raise NotImplementedError

    def get(self, request, month: str):
        try:
            statement = statement_for_user(request.user, month=month)
        except InvalidMonth as exc:
            raise ApiError(str(exc), code="invalid_month", status_code=400, details={"month": month}) from exc
        response = HttpResponse(self.render(statement), content_type=self.media_type)
        response["Content-Disposition"] = f'attachment; filename="{statement_filename(statement, self.extension)}"'
        return response


STATEMENT_DESCRIPTION = (
    "Your account statement of a calendar month (UTC), built from the ledger: opening and closing balances per "
    "account with the month's movements between them (deposits, withdrawals, trades, order holds, adjustments), "
    "positions at the start and end valued at the last trade price, deposits, withdrawals, fills with fees, the fees "
    "total and adjustments. A month that is malformed or has not begun answers 400 `invalid_month`.")


class StatementCsvView(StatementView):
    extension, media_type = "csv", "text/csv; charset=utf-8"

    @extend_schema(operation_id="statements_csv", parameters=[MONTH], description=STATEMENT_DESCRIPTION,
                   responses={(200, "text/csv"): OpenApiResponse(
                       OpenApiTypes.STR, description="One section per block: a title row, a header row, the rows, "
                                                     "an empty row.")} | refusals(400))
    def get(self, request, month: str):
        return super().get(request, month)

    def render(self, statement) -> str:
        return statement_csv(statement)


class StatementPdfView(StatementView):
    extension, media_type = "pdf", "application/pdf"

    @extend_schema(operation_id="statements_pdf", parameters=[MONTH], description=STATEMENT_DESCRIPTION,
                   responses={(200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY,
                                                                        description="An A4 PDF.")} | refusals(400))
    def get(self, request, month: str):
        return super().get(request, month)

    def render(self, statement) -> bytes:
        return statement_pdf(statement)
