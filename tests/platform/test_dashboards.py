"""The Grafana dashboards in deploy/grafana/dashboards/: valid, on the provisioned Prometheus, and naming only metrics
the platform exports. The names are read from every panel's PromQL and checked against what /metrics serves after
real work (orders placed and refused over HTTP, a matching drain, an execution report pushed on /ws/orders/)."""
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from accounts.services import jwt_issue
from brokerx.asgi import application
from orders.services import OrderRequest, order_place
from outbox.services import outbox_drain

BASE_DIR = Path(__file__).resolve().parents[2]
DASHBOARDS = BASE_DIR / "deploy" / "grafana" / "dashboards"
DATASOURCES = BASE_DIR / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"

# --- names in PromQL -----------------------------------------------------------------------------------------------

# Words that are PromQL syntax, not series: binary and set operators, modifiers, grouping keywords, literals.
PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "by", "without", "on", "ignoring", "group_left", "group_right",
                   "offset", "atop", "inf", "nan"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")  # label names and values, never metric names
_RANGE = re.compile(r"\[[^\[\]]*\]")  # [5m], [1h:1m]
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")  # label lists
_VARIABLE = re.compile(r"\$\{?\w+\}?")  # Grafana's $__rate_interval and the like
_IDENTIFIER = re.compile(r"(?<![\w.:])([A-Za-z_:][\w:]*)(\s*\()?")


def promql_metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers that are not functions or aggregations (followed by a
    parenthesis), not keywords, not label names (in matchers or grouping lists) and not strings or durations."""
    text = _VARIABLE.sub(" ", _STRING.sub(" ", expr))
    text = _RANGE.sub(" ", _MATCHERS.sub(" ", text))
    text = _GROUPING.sub(" ", text)
    return {name for name, call in _IDENTIFIER.findall(text) if not call and name.lower() not in PROMQL_KEYWORDS}


def dashboard_metric_names(dashboard: dict) -> dict[str, set[str]]:
    """Panel title -> the metric names of all its targets' expressions."""
    return {panel["title"]: set().union(*(promql_metric_names(t["expr"]) for t in panel.get("targets", [])))
            for panel in dashboard["panels"]}


def missing_metrics(dashboard: dict, exported: set[str]) -> dict[str, set[str]]:
    """Panel title -> the names it uses that are not exported (only panels with one)."""
    return {title: names - exported for title, names in dashboard_metric_names(dashboard).items() if names - exported}


# Sample names prometheus_client writes for each family type, after the family name.
_SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"),
             "summary": ("", "_count", "_sum", "_created"), "gauge": ("",), "gaugehistogram": ("_bucket", "_gcount",
                                                                                              "_gsum"),
             "info": ("_info",), "stateset": ("",), "unknown": ("",)}


def exported_names(exposition: str) -> set[str]:
    """Every series name an exposition text (a /metrics answer) offers: each family's sample names as the client
    library writes them for its type (a labelled family with no child yet exports its HELP and TYPE only), plus the
    samples present."""
    names = set()
    for family in text_string_to_metric_families(exposition):
        names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
        names.update(sample.name for sample in family.samples)
    return names


def load_dashboards() -> dict[str, dict]:
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


# --- the extraction itself -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("expr", "names"), [
    ("celery_queue_depth", {"celery_queue_depth"}),
    ('sum by (view) (rate(django_http_responses_total_by_status_view_method_total{status=~"5..",view!="x"}[5m]))',
     {"django_http_responses_total_by_status_view_method_total"}),
    ("histogram_quantile(0.99, sum by (le, view) (rate(a_seconds_bucket[5m])))", {"a_seconds_bucket"}),
    ("sum(rate(a_total[1h:1m])) without (instance) / on (job) group_left (x) b offset 5m", {"a_total", "b"}),
    ('max(x) > bool 0 and y unless z or label_replace(w, "dst", "$1", "src", "(.*)")', {"x", "y", "z", "w"}),
    ("sum(increase(rate_limit_unenforced_total[$__rate_interval])) * 1e3 + Inf", {"rate_limit_unenforced_total"}),
])
def test_promql_metric_names_are_the_series_only(expr, names):
    assert promql_metric_names(expr) == names


def test_exported_names_follow_the_client_librarys_suffixes():
    text = ("# HELP saga_completed_total x\n# TYPE saga_completed_total counter\n"
            "# HELP lag_seconds x\n# TYPE lag_seconds histogram\n"
            "# HELP depth x\n# TYPE depth gauge\ndepth{queue=\"low\"} 1.0\n")
    names = exported_names(text)
    assert {"saga_completed_total", "lag_seconds_bucket", "lag_seconds_count", "lag_seconds_sum", "depth"} <= names
    # A counter's or histogram's family name is no series Prometheus stores.
    assert not {"saga_completed", "saga_completed_total_total", "lag_seconds"} & names


# --- the dashboards' shape -----------------------------------------------------------------------------------------

def test_every_dashboard_is_valid_json_with_unique_ids_on_the_provisioned_prometheus():
    (source,) = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    provisioned = {"type": source["type"], "uid": source["uid"]}
    dashboards = load_dashboards()
    assert {"brokerx-golden-signals.json", "brokerx-trading.json", "brokerx-outbox-saga.json",
            "brokerx-realtime.json"} <= set(dashboards)
    uids = [d["uid"] for d in dashboards.values()]
    assert len(uids) == len(set(uids))
    for name, dashboard in dashboards.items():
        panels = dashboard["panels"]
        ids = [panel["id"] for panel in panels]
        assert panels and len(ids) == len(set(ids)), name
        for panel in panels:
            assert panel["type"] in {"timeseries", "stat"}, (name, panel["title"])
            assert panel["datasource"] == provisioned, (name, panel["title"])
            assert panel["targets"], (name, panel["title"])
            for target in panel["targets"]:
                assert target.get("datasource", provisioned) == provisioned, (name, panel["title"])
                assert promql_metric_names(target["expr"]), (name, panel["title"], target["expr"])
            ref_ids = [target["refId"] for target in panel["targets"]]
            assert len(ref_ids) == len(set(ref_ids)), (name, panel["title"])


# --- the names against a live /metrics -----------------------------------------------------------------------------

def _place(user, *, side: str, qty: str, price: str):
    order, _ = order_place(user=user, request=OrderRequest(
        symbol="ACME", side=side, type="limit", time_in_force="gtc", qty=Decimal(qty), limit_price=Decimal(price)))
    return order


def _http_orders(access: str) -> list[int]:
    """A buy that crosses the resting sell and one refused by the price band, as a client sends them."""
    client = Client(HTTP_AUTHORIZATION=f"Bearer {access}")
    order = {"symbol": "ACME", "side": "buy", "type": "limit", "time_in_force": "gtc", "qty": "5",
             "limit_price": "100.00"}
    return [client.post("/api/v1/orders", order, content_type="application/json").status_code,
            client.post("/api/v1/orders", {**order, "limit_price": "150.00"},
                        content_type="application/json").status_code]


def _scrape() -> str:
    response = Client().get("/metrics")
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def traders(instrument, make_trader):
    seller, buyer = make_trader(shares={"ACME": "50"}), make_trader(cash="20000")
    return seller, buyer, jwt_issue(user=buyer)["access"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fresh_books_async")
async def test_every_metric_the_dashboards_name_is_exported_after_real_work(traders, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)  # /metrics: this process, where the work ran
    seller, _buyer, access = traders
    stream = WebsocketCommunicator(application, f"/ws/orders/?token={access}")
    connected, code = await stream.connect(timeout=5)
    assert connected, code
    assert (await stream.receive_json_from(timeout=5))["type"] == "hello"

    await sync_to_async(_place, thread_sensitive=True)(seller, side="sell", qty="5", price="100.00")
    assert await sync_to_async(_http_orders, thread_sensitive=True)(access) == [201, 422]
    drain = sync_to_async(outbox_drain, thread_sensitive=True)
    assert await drain(queue="critical", partition_key="ACME") > 0  # the buy fills against the sell
    report = await stream.receive_json_from(timeout=5)  # pushed to the buyer: the push delay is observed
    assert report["type"] == "execution_report"
    await stream.disconnect()
    exposition = await sync_to_async(_scrape, thread_sensitive=True)()

    exported = exported_names(exposition)
    # The work above left samples, not just definitions, in the series the dashboards lean on.
    present = {s.name for f in text_string_to_metric_families(exposition) for s in f.samples}
    assert {"saga_started_total", "orders_rejected_total", "saga_completed_total", "outbox_events_processed_total",
            "execution_report_push_delay_seconds_bucket", "django_http_requests_latency_seconds_by_view_method_bucket",
            "django_http_responses_total_by_status_view_method_total"} <= present
    for name, dashboard in load_dashboards().items():
        assert missing_metrics(dashboard, exported) == {}, name

    # The same check fails on a name the platform does not export, and on a counter named without its suffix.
    wrong = {"panels": [{"id": 0, "title": "wrong", "targets": [
        {"expr": 'sum by (code) (rate(orders_rejected_total[5m])) / sum(rate(orders_refused_total{code="x"}[5m]))'},
        {"expr": "sum(rate(saga_completed[5m]))"}]}]}
    assert missing_metrics(wrong, exported) == {"wrong": {"orders_refused_total", "saga_completed"}}
