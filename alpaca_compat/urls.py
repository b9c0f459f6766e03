"""Routes of the Alpaca Trading API v2 surface, at exactly the paths the SDK calls (no trailing slashes)."""
from django.urls import path, re_path

from .api import account, views, watchlists

urlpatterns = [
    path("v2/account", views.AccountView.as_view(), name="alpaca-account"),
    path("v2/account/activities", account.ActivityListView.as_view(), name="alpaca-activities"),
    path("v2/account/activities/<str:activity_type>", account.ActivityListView.as_view(),
         name="alpaca-activities-of-type"),
    path("v2/account/portfolio/history", account.PortfolioHistoryView.as_view(), name="alpaca-portfolio-history"),
    path("v2/clock", views.ClockView.as_view(), name="alpaca-clock"),
    path("v2/calendar", views.CalendarView.as_view(), name="alpaca-calendar"),
    path("v2/orders", views.OrderListView.as_view(), name="alpaca-orders"),
    path("v2/orders:by_client_order_id", views.OrderByClientIdView.as_view(), name="alpaca-order-by-client-id"),
    path("v2/orders/<str:order_id>", views.OrderDetailView.as_view(), name="alpaca-order"),
    path("v2/positions", views.PositionListView.as_view(), name="alpaca-positions"),
    path("v2/positions/<str:symbol_or_asset_id>", views.PositionDetailView.as_view(), name="alpaca-position"),
    path("v2/assets", views.AssetListView.as_view(), name="alpaca-assets"),
    path("v2/assets/<str:symbol_or_asset_id>", views.AssetDetailView.as_view(), name="alpaca-asset"),
    path("v2/watchlists", watchlists.WatchlistListView.as_view(), name="alpaca-watchlists"),
    path("v2/watchlists:by_name", watchlists.WatchlistByNameView.as_view(), name="alpaca-watchlist-by-name"),
    path("v2/watchlists/<str:watchlist_id>", watchlists.WatchlistDetailView.as_view(), name="alpaca-watchlist"),
    path("v2/watchlists/<str:watchlist_id>/<str:symbol>", watchlists.WatchlistSymbolView.as_view(),
         name="alpaca-watchlist-symbol"),
    re_path(r"^v2/", views.unknown_endpoint, name="alpaca-unknown"),
]
