"""Routes of the watchlists API under /api/v1/."""
from django.urls import path

from . import views

urlpatterns = [
    path("watchlists", views.WatchlistListCreateView.as_view(), name="watchlists"),
    path("watchlists/<int:watchlist_id>", views.WatchlistDetailView.as_view(), name="watchlist-detail"),
    path("watchlists/<int:watchlist_id>/symbols", views.WatchlistSymbolAddView.as_view(), name="watchlist-symbols"),
    path("watchlists/<int:watchlist_id>/symbols/<str:symbol>", views.WatchlistSymbolRemoveView.as_view(),
         name="watchlist-symbol"),
]
