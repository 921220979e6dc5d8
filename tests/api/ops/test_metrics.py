"""Prometheus metrics: counters and latency per method, route template and status."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from api.settings import ConfigError


def samples(client, headers: dict[str, str] | None = None) -> dict[tuple, float]:
    """Scrape /metrics: {(sample name, method, route, status): value}."""
    response = client.get("/metrics", headers=headers or {})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    found = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            labels = sample.labels
            key = (sample.name, labels.get("method"), labels.get("route"), labels.get("status"))
            if "le" not in labels:
                found[key] = sample.value
    return found


def test_counters_follow_requests_by_route_template(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    app.add_url_rule("/items/<int:item_id>", "item", lambda item_id: {"id": item_id})
    client = app.test_client()
    for item_id in (1, 2, 3):
        client.get(f"/items/{item_id}")
    client.get("/api/restricted")
    client.get("/no/such/url")
    client.open("/", method="BREW")

    found = samples(client)
    assert found[("http_requests_total", "GET", "/items/<int:item_id>", "200")] == 3
    assert found[("http_requests_total", "GET", "/api/restricted", "401")] == 1
    assert found[("http_requests_total", "GET", "<unmatched>", "404")] == 1
    assert found[("http_requests_total", "other", "<unmatched>", "405")] == 1
    assert found[("http_request_duration_seconds_count", "GET", "/items/<int:item_id>", "200")] == 3
    assert found[("http_request_duration_seconds_sum", "GET", "/items/<int:item_id>", "200")] > 0
    assert not any("/items/1" in str(key) for key in found)

    client.get("/items/4")
    assert samples(client)[("http_requests_total", "GET", "/items/<int:item_id>", "200")] == 4


def test_apps_in_one_process_count_separately(make_app: Callable[..., Flask]) -> None:
    first, second = make_app().test_client(), make_app().test_client()
    first.get("/")
    first.get("/")
    second.get("/")
    assert samples(first)[("http_requests_total", "GET", "/", "200")] == 2
    assert samples(second)[("http_requests_total", "GET", "/", "200")] == 1


def test_metrics_can_be_switched_off(make_app: Callable[..., Flask]) -> None:
    response = make_app(METRICS_ENABLED="0").test_client().get("/metrics")
    assert response.status_code == 404
    assert response.get_json()["error"] == 404


@pytest.mark.parametrize(
    ("authorization", "status"),
    [(None, 401), ("Bearer wrong", 401), ("metrics-reader-token", 401),
     ("Bearer metrics-reader-token", 200)],
)  # fmt: skip
def test_metrics_token(
    make_app: Callable[..., Flask], authorization: str | None, status: int
) -> None:
    client = make_app(METRICS_TOKEN="metrics-reader-token").test_client()
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.get_json()["error"] == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'


def test_multiprocess_dir_must_reach_prometheus_client(
    make_app: Callable[..., Flask], tmp_path
) -> None:
    # This process imported prometheus-client without the variable: refuse, do not count wrong.
    with pytest.raises(ConfigError, match="process environment"):
        make_app(PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    with pytest.raises(ConfigError, match="is not a folder"):
        make_app(PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "missing"))


def test_a_batch_adds_up_to_what_each_observation_would(make_app: Callable[..., Flask]) -> None:
    from api.ops.metrics import LATENCY_BUCKETS, RequestMetrics

    values = [0.0, 0.005, 0.0051, 0.3, 0.3, 10.0, 11.0, *(LATENCY_BUCKETS), 1e-9, 7.0]
    routes = [("GET", "/a", 200), ("GET", "/a", 500), ("POST", "/b", 201)]
    batch = [(*routes[index % 3], value) for index, value in enumerate(values)]
    batched, one_by_one = RequestMetrics(), RequestMetrics()
    batched._observe_all(batch)
    for method, route, status, seconds in batch:
        one_by_one.observe(method, route, status, seconds)

    def exposed(metrics: RequestMetrics) -> dict[tuple, float]:
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(metrics.exposition().decode())
            for sample in family.samples
            if not sample.name.endswith("_created")
        }

    got, expected = exposed(batched), exposed(one_by_one)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key
    first = (("method", "GET"), ("route", "/a"), ("status", "200"))
    assert got[("http_requests_total", first)] == sum(1 for item in batch if item[:3] == routes[0])
    bucket = ("http_request_duration_seconds_bucket", (("le", "0.005"), *first))
    assert got[bucket] == expected[bucket] > 0
