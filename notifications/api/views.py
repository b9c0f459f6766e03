"""Fills (execution reports) recovery by sequence, in-app notifications and e-mail preferences."""
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasTradeScope
from brokerx.api.errors import ApiError

from ..models import ExecutionReport, Notification, NotificationPreference
from ..selectors import preference_for_user
from ..services import notifications_mark_read, preference_update


class ExecutionReportSerializer(serializers.ModelSerializer):
    class Meta:
        model = ExecutionReport
        fields = ("seq", "order_id", "client_order_id", "symbol", "side", "exec_type", "order_status", "last_qty",
                  "last_px", "cum_qty", "leaves_qty", "avg_px", "fee", "liquidity", "trade_id", "reason",
                  "created_at")
        read_only_fields = fields


class FillListView(generics.ListAPIView):
    """Execution reports of the caller with seq > after, oldest first: what a reconnecting client missed."""

    serializer_class = ExecutionReportSerializer

    @extend_schema(parameters=[OpenApiParameter("after", int, description="last sequence number seen"),
                               OpenApiParameter("exec_type", str, description="e.g. trade for fills only")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        raw = self.request.query_params.get("after", "0")
        try:
            after = int(raw)
        except ValueError:
            raise ApiError("after must be an integer sequence number.", code="validation_error",
                           details={"after": raw}) from None
        qs = ExecutionReport.objects.filter(user=self.request.user, seq__gt=after).order_by("seq")
        if exec_type := self.request.query_params.get("exec_type"):
            qs = qs.filter(exec_type=exec_type)
        return qs


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = ("id", "kind", "title", "body", "data", "read_at", "created_at")
        read_only_fields = fields


class NotificationPagination(LimitOffsetPagination):
    """A page of notifications; the view adds the caller's unread count to it."""

    def get_paginated_response_schema(self, schema):
        page = super().get_paginated_response_schema(schema)
        page["properties"]["unread"] = {"type": "integer", "description": "The caller's unread notifications, all "
                                                                           "pages together."}
        page["required"] = [*page.get("required", []), "unread"]
        return page


class NotificationListView(generics.ListAPIView):
    serializer_class = NotificationSerializer
    pagination_class = NotificationPagination

    @extend_schema(parameters=[OpenApiParameter("unread", bool, description="only unread ones")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        qs = Notification.objects.filter(user=self.request.user).order_by("-id")
        if self.request.query_params.get("unread") in ("1", "true"):
            qs = qs.filter(read_at__isnull=True)
        return qs

    def list(self, request, *args, **kwargs):
        response = super().list(request, *args, **kwargs)
        response.data["unread"] = Notification.objects.filter(user=request.user, read_at__isnull=True).count()
        return response


class MarkReadSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(), required=False)


class MarkedSerializer(serializers.Serializer):
    marked = serializers.IntegerField()


class NotificationMarkReadView(APIView):
    permission_classes = [IsAuthenticated, HasTradeScope]  # a read-only API key reads, and writes nothing

    @extend_schema(request=MarkReadSerializer, responses=MarkedSerializer)
    def post(self, request):
        serializer = MarkReadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        updated = notifications_mark_read(user=request.user, ids=serializer.validated_data.get("ids"))
        return Response({"marked": updated})


class PreferenceSerializer(serializers.ModelSerializer):
    class Meta:
        model = NotificationPreference
        fields = ("email_fills", "email_cancels", "email_deposits")


class PreferenceView(APIView):
    permission_classes = [IsAuthenticated, HasTradeScope]

    @extend_schema(responses=PreferenceSerializer)
    def get(self, request):
        return Response(PreferenceSerializer(preference_for_user(request.user.pk)).data)

    @extend_schema(request=PreferenceSerializer, responses=PreferenceSerializer)
    def patch(self, request):
        # Validate before touching the database: a refused request writes nothing, not even a default row.
        serializer = PreferenceSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        preference = preference_update(user_id=request.user.pk, changes=dict(serializer.validated_data))
        return Response(PreferenceSerializer(preference).data)
