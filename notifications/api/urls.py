"""Routes of the notifications API under /api/v1/."""
from django.urls import path

from . import views

urlpatterns = [
    path("fills", views.FillListView.as_view(), name="fills"),
    path("notifications", views.NotificationListView.as_view(), name="notifications"),
    path("notifications/read", views.NotificationMarkReadView.as_view(), name="notifications-read"),
    path("notifications/preferences", views.PreferenceView.as_view(), name="notification-preferences"),
]
