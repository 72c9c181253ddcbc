"""Prometheus metrics: scraped over HTTP and parsed with prometheus_client's own parser."""

from __future__ import annotations

import urllib.request
from typing import Any

import flask
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect
from werkzeug.wrappers import Response

import syncaerys
import syncaerys.flask
import syncaerys.metrics
from tests.test_handshake import exchange
from tests.test_handshake import upgrade_request
from tests.utils import PROMPTLY
from tests.utils import Recorder
from tests.utils import wait_until
from tests.utils import werkzeug_serving


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=PROMPTLY) as reply:
        assert reply.headers["Content-Type"].startswith("text/plain")
        text = reply.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted({"gateway": "Recorder", **labels}.items())))]


def test_the_router_metrics_responder_counts_what_happened() -> None:
    recorder = Recorder()
    gateway = syncaerys.websocket(recorder, heartbeat_period=0.2)
    router = syncaerys.Router().get("/chat", gateway).get("/metrics", syncaerys.metrics.wsgi_app(gateway))
    with syncaerys.Server(router, port=0) as server:
        base = f"http://127.0.0.1:{server.port}"
        before = scrape(f"{base}/metrics")
        assert value(before, "syncaerys_connections") == 0
        # No backplane: no up or down state to report (it read 1.0).
        assert not [key for key in before if key[0].startswith("syncaerys_backplane")]
        refused = upgrade_request(server.port, headers={"Sec-WebSocket-Version": "8"})
        assert exchange(server.port, refused)[0] == 426
        with connect(f"ws://127.0.0.1:{server.port}/chat") as first, connect(f"ws://127.0.0.1:{server.port}/chat"):
            first.send("hello")  # echoed by the Recorder
            assert first.recv(timeout=PROMPTLY) == "hello"
            # A heartbeat round trip: the server pings an idle client; the client answers.
            wait_until(lambda: value(scrape(f"{base}/metrics"), "syncaerys_heartbeat_latency_seconds_count") >= 1)
            during = scrape(f"{base}/metrics")
            assert value(during, "syncaerys_connections") == 2
            assert value(during, "syncaerys_messages_received_total") == 1
            assert value(during, "syncaerys_messages_sent_total") == 1
            assert value(during, "syncaerys_bytes_received_total") >= len("hello") + 6
            assert value(during, "syncaerys_send_queue_bytes") == 0
        wait_until(lambda: len([e for e in recorder.events if e[0] == "close"]) == 2)
        after = scrape(f"{base}/metrics")
    assert value(after, "syncaerys_connections") == 0
    assert value(after, "syncaerys_handshakes_total", outcome="accepted") == 2
    assert value(after, "syncaerys_handshakes_total", outcome="426") == 1
    assert value(after, "syncaerys_closes_total", code="1000") == 2
    assert value(after, "syncaerys_messages_received_total") == 1  # kept after the clients left
    count = value(after, "syncaerys_heartbeat_latency_seconds_count")
    assert value(after, "syncaerys_heartbeat_latency_seconds_bucket", le="+Inf") == count >= 1


def test_a_flask_view_serves_the_exposition() -> None:
    app = flask.Flask(__name__)
    gateway = syncaerys.flask.Websockets(app).route("/chat", Recorder())

    @app.get("/metrics")
    def metrics() -> Response:
        return syncaerys.metrics.exposition(gateway)  # as the README says: a view returning it

    with syncaerys.Server(app, port=0) as server, connect(f"ws://127.0.0.1:{server.port}/chat"):
        samples = scrape(f"http://127.0.0.1:{server.port}/metrics")
        assert value(samples, "syncaerys_connections") == 1
    # Under werkzeug's own server (flask run) too: it gave http.client "BadStatusLine: HTTP/1.1 0 text/plain".
    with werkzeug_serving(app) as port:
        assert "syncaerys_connections" in {name for name, _ in scrape(f"http://127.0.0.1:{port}/metrics")}


def test_a_cluster_backplane_reports_whether_it_is_up() -> None:
    # Never started, so never connected: down, not absent.
    gateway = syncaerys.websocket(Recorder(), backplane=syncaerys.RedisBackplane("redis://127.0.0.1:1/0"))
    samples = {
        (sample.name, sample.value)
        for family in text_string_to_metric_families(syncaerys.metrics.exposition(gateway).get_data(as_text=True))
        for sample in family.samples
    }
    assert ("syncaerys_backplane_up", 0.0) in samples
    assert ("syncaerys_backplane_publish_errors_total", 0.0) in samples


def test_two_gateways_of_one_handler_class_get_distinct_labels() -> None:
    first, second = syncaerys.websocket(Recorder()), syncaerys.websocket(Recorder())
    body = syncaerys.metrics.exposition(first, second).get_data(as_text=True)
    assert 'gateway="Recorder"' in body and 'gateway="Recorder-2"' in body
    with pytest.raises(TypeError, match="gateways"):
        syncaerys.metrics.exposition(Recorder())  # type: ignore[arg-type]
