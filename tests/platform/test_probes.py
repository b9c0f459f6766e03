"""Probes and metrics answer requests addressed to a replica's IP, which is not an allowed host."""
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db

REPLICA = "10.0.3.7:8000"  # how Prometheus addresses each web replica it discovers


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_answer_whatever_the_host(client, settings, path):
    settings.ALLOWED_HOSTS = ["brokerx.example"]
    response = client.get(path, HTTP_HOST=REPLICA)
    assert response.status_code == 200, response.content[:200]


def test_other_paths_still_refuse_an_unknown_host(client, settings):
    settings.ALLOWED_HOSTS = ["brokerx.example"]
    assert client.get("/api/v1/market/symbols", HTTP_HOST=REPLICA).status_code == 400
    assert client.get("/api/v1/market/symbols", HTTP_HOST="brokerx.example").status_code == 200


def test_the_public_proxy_does_not_publish_metrics():
    conf = (Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf").read_text()
    block = conf[conf.index("location = /metrics"):]
    assert "return 404;" in block[:block.index("}")]
