"""The trader's pages: server-rendered shells whose data comes from the native API and WebSockets in the browser."""
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET

from accounts.views import mfa_required
from orders.api.serializers import InstrumentSerializer
from orders.models import Instrument
from portfolios.statements import recent_statement_months


def _instruments() -> list[dict]:
    """The symbol picker's choices, in the API's shape so the page's script reads one format."""
    return list(InstrumentSerializer(Instrument.objects.filter(is_tradable=True).order_by("symbol"), many=True).data)


@mfa_required
@require_GET
@ensure_csrf_cookie  # the page's script sends it back in X-CSRFToken on every API write
def trade(request):
    instruments = _instruments()
    symbols = [i["symbol"] for i in instruments]
    wanted = (request.GET.get("symbol") or "").upper()
    symbol = wanted if wanted in symbols else (symbols[0] if symbols else "")
    return render(request, "web/trade.html", {"instruments": instruments, "symbol": symbol,
                                              "can_trade": request.user.email_verified_at is not None})


@mfa_required
@require_GET
@ensure_csrf_cookie
def portfolio(request):
    return render(request, "web/portfolio.html", {"can_trade": request.user.email_verified_at is not None,
                                                  "statement_months": recent_statement_months()})
