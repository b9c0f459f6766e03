"""Alpaca's account history endpoints: /v2/account/activities and /v2/account/portfolio/history."""
from datetime import timedelta

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from portfolios import history

from .. import activities
from ..errors import invalid
from . import representations as rep
from .views import AlpacaView, _choice, _date, _moment


def _types(raw: str | None, path_type: str | None) -> set[str] | None:
    if path_type:
        names = [path_type]
    elif raw:
        names = [name.strip() for name in raw.split(",") if name.strip()]
    else:
        return None
    unknown = [name for name in names if name.upper() not in activities.ACTIVITY_TYPES]
    if unknown:
        raise invalid(f"invalid activity_type: {', '.join(unknown)}")
    return {name.upper() for name in names}


class ActivityListView(AlpacaView):
    """Newest first by default; `page_token` is the id of the last activity received."""

    @extend_schema(exclude=True)
    def get(self, request, activity_type: str | None = None):
        params = request.query_params
        types = _types(params.get("activity_types"), activity_type)
        category = _choice(params, "category", ("trade_activity", "non_trade_activity"), None)
        if category is not None:
            chosen = {"FILL"} if category == "trade_activity" else set(activities.ACTIVITY_TYPES) - {"FILL"}
            types = chosen if types is None else types & chosen
        try:
            page_size = int(params.get("page_size") or activities.MAX_PAGE_SIZE)
        except ValueError as exc:
            raise invalid("invalid page_size") from exc
        if not 1 <= page_size <= activities.MAX_PAGE_SIZE:
            raise invalid(f"page_size must be between 1 and {activities.MAX_PAGE_SIZE}")
        since, until = _moment(params, "after"), _moment(params, "until")
        day = _date(params, "date")
        if day is not None:
            if since or until:
                raise invalid("date cannot be combined with after or until")
            since = _moment({"date": day.isoformat()}, "date")
            until = since + timedelta(days=1)
        page = activities.activities_for_user(
            request.user, types=types, page_size=page_size,
            direction=_choice(params, "direction", ("asc", "desc"), "desc"), page_token=params.get("page_token"),
            since=since, until=until)
        return Response([rep.activity_json(activity_id, fields, account_pk=request.user.pk)
                         for activity_id, fields in page])


class PortfolioHistoryView(AlpacaView):
    @extend_schema(exclude=True)
    def get(self, request):
        params = request.query_params
        try:
            window = history.window_from(period=params.get("period"), timeframe=params.get("timeframe"),
                                         start=_moment(params, "start"), end=_moment(params, "end"),
                                         date_end=_date(params, "date_end"))
        except history.InvalidWindow as exc:
            raise invalid(exc.message) from exc
        return Response(history.portfolio_history(request.user, window))
