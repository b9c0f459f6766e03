"""Routes of the orders API under /api/v1/."""
from django.urls import path

from . import views

urlpatterns = [
    path("orders", views.OrderListCreateView.as_view(), name="orders"),
    path("orders/<int:order_id>", views.OrderDetailView.as_view(), name="order-detail"),
    path("orders/<int:order_id>/cancel", views.OrderCancelView.as_view(), name="order-cancel"),
    path("orders/<int:order_id>/events", views.OrderEventListView.as_view(), name="order-events"),
    path("market/symbols", views.InstrumentListView.as_view(), name="market-symbols"),
]
