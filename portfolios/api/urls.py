"""Routes of the portfolios API under /api/v1/."""
from django.urls import path

from . import views

urlpatterns = [
    path("deposits", views.DepositListCreateView.as_view(), name="deposits"),
    path("deposits/<int:deposit_id>", views.DepositDetailView.as_view(), name="deposit-detail"),
    path("withdrawals", views.WithdrawalListCreateView.as_view(), name="withdrawals"),
    path("portfolio", views.PortfolioView.as_view(), name="portfolio"),
    path("portfolio/history", views.PortfolioHistoryView.as_view(), name="portfolio-history"),
    path("activities", views.ActivityListView.as_view(), name="activities"),
    path("statements/<str:month>.csv", views.StatementCsvView.as_view(), name="statement-csv"),
    path("statements/<str:month>.pdf", views.StatementPdfView.as_view(), name="statement-pdf"),
]
