"""The back office's operations page (/admin/operations/): the platform's health at a glance, charts drawn here."""
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from brokerx import operations

CHART_WIDTH = 150
CHART_HEIGHT = 32


def bar_chart_svg(values: list[int], *, label: str) -> SafeString:
    """A small inline SVG bar chart of `values` (one bar each, scaled to the largest), with a title per bar."""
    top = max(values, default=0) or 1
    step = CHART_WIDTH / max(len(values), 1)

    def bar(i: int, value: int) -> tuple:
        height = max(CHART_HEIGHT * value / top, 1) if value else 0
        return (f"{i * step:.1f}", f"{CHART_HEIGHT - height:.1f}", f"{step - 1:.1f}", f"{height:.1f}", value)

    bars = format_html_join(
        "", '<rect x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
        (bar(i, value) for i, value in enumerate(values)))
    return format_html(
        '<svg class="ops-chart" role="img" aria-label="{}" width="{}" height="{}" viewBox="0 0 {} {}">'
        '<line x1="0" y1="{}" x2="{}" y2="{}" />{}</svg>',
        label, CHART_WIDTH, CHART_HEIGHT, CHART_WIDTH, CHART_HEIGHT, CHART_HEIGHT - 0.5, CHART_WIDTH,
        CHART_HEIGHT - 0.5, bars)


def _activity(title: str, series) -> dict:
    values = [n for _, n in series]
    return {"title": title, "total": sum(values), "last": values[-1] if values else 0,
            "chart": bar_chart_svg(values, label=f"{title} per minute, last {len(values)} minutes"),
            "since": series[0][0] if series else None}


def operations_view(request, admin_site):
    """Every figure is read on page load; the invariant checker too (set-wise SQL, timed on the page)."""
    backlog = operations.outbox_backlog()
    depths = operations.queue_depths()
    context = {
        **admin_site.each_context(request),
        "title": "Operations",
        "backlog": backlog,
        "pending_total": sum(row.pending for row in backlog),
        "dead_total": sum(row.dead for row in backlog),
        "queues": depths,
        "queues_chart": bar_chart_svg(list(depths.values()), label="Celery queue depths") if depths else None,
        "invariants": operations.invariants_summary(),
        "halted": operations.halted_instruments(),
        "activity": [
            _activity("Orders", operations.orders_per_minute()),
            _activity("Fills", operations.fills_per_minute()),
            _activity("Rejected / canceled", operations.orders_refused_per_minute()),
        ],
    }
    return TemplateResponse(request, "admin/operations.html", context)
