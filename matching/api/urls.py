"""Routes of the market data API under /api/v1/ (the symbol list is served by the orders context)."""
from django.urls import path

from . import views

urlpatterns = [
    path("market/<str:symbol>/quote", views.QuoteView.as_view(), name="market-quote"),
    path("market/<str:symbol>/book", views.BookView.as_view(), name="market-book"),
    path("market/<str:symbol>/trades", views.TradesView.as_view(), name="market-trades"),
    path("market/<str:symbol>/bars", views.BarsView.as_view(), name="market-bars"),
]
