"""Back office for instruments (halt, resume) and orders (inspect the event log, cancel)."""
from django.contrib import admin, messages
from django.db import transaction

from .errors import OrderError
from .models import Instrument, Order, OrderEvent, TradingSession
from .services import instrument_set_status, order_cancel


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin):
    list_display = ("symbol", "name", "reference_price", "last_price", "trading_status", "is_tradable",
                    "price_band_pct", "tick_size", "lot_size")
    list_filter = ("trading_status", "is_tradable")
    search_fields = ("symbol", "name")
    actions = ["halt", "resume"]

    @admin.action(description="Halt trading in the selected symbols")
    def halt(self, request, queryset):
        for instrument in queryset:
            instrument_set_status(symbol=instrument.symbol, status="halted", staff=request.user)
        self.message_user(request, f"Halted {queryset.count()} symbol(s).", messages.WARNING)

    @admin.action(description="Resume trading in the selected symbols")
    def resume(self, request, queryset):
        for instrument in queryset:
            instrument_set_status(symbol=instrument.symbol, status="open", staff=request.user)
        self.message_user(request, f"Resumed {queryset.count()} symbol(s).", messages.SUCCESS)


@admin.register(TradingSession)
class TradingSessionAdmin(admin.ModelAdmin):
    list_display = ("date", "opens_at", "closes_at", "is_open", "day_orders_expired_at")


class OrderEventInline(admin.TabularInline):
    model = OrderEvent
    extra = 0
    can_delete = False
    readonly_fields = ("type", "data", "created_at")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "symbol", "side", "type", "qty", "limit_price", "status", "cum_qty", "leaves_qty",
                    "avg_px", "saga_state", "created_at")
    list_filter = ("status", "symbol", "side", "type", "saga_state")
    search_fields = ("id", "client_order_id", "user__email")
    readonly_fields = [f.name for f in Order._meta.fields]
    inlines = [OrderEventInline]
    actions = ["cancel_orders"]
    list_select_related = ("user",)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Cancel the selected open orders (releases their reservations)")
    def cancel_orders(self, request, queryset):
        canceled = 0
        for order in queryset:
            try:
                with transaction.atomic():
                    order_cancel(user=order.user, order_id=order.pk, version=None, reason="staff")
                canceled += 1
            except OrderError as exc:
                self.message_user(request, f"Order #{order.pk}: {exc.message}", messages.WARNING)
        self.message_user(request, f"Canceled {canceled} order(s).", messages.SUCCESS)
