"""Prometheus metrics: scraped over HTTP and parsed with prometheus_client's own parser."""

from __future__ import annotations

import urllib.request
from typing import Any

import flask
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

import syncaerys
import syncaerys.flask
import syncaerys.metrics
from tests.test_handshake import exchange
from tests.test_handshake import upgrade_request
from tests.utils import PROMPTLY
from tests.utils import Recorder
from tests.utils import wait_until


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
        assert value(before, "syncaerys_backplane_up") == 1
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
    assert value(after, "syncaerys_backplane_publish_errors_total") == 0
    count = value(after, "syncaerys_heartbeat_latency_seconds_count")
    assert value(after, "syncaerys_heartbeat_latency_seconds_bucket", le="+Inf") == count >= 1


def test_a_flask_view_serves_the_exposition() -> None:
    app = flask.Flask(__name__)
    gateway = syncaerys.flask.Websockets(app).route("/chat", Recorder())

    @app.get("/metrics")
    def metrics() -> tuple[bytes, int, dict[str, str]]:
        body, content_type = syncaerys.metrics.exposition(gateway)
        return body, 200, {"Content-Type": content_type}

    with syncaerys.Server(app, port=0) as server, connect(f"ws://127.0.0.1:{server.port}/chat"):
        samples = scrape(f"http://127.0.0.1:{server.port}/metrics")
        assert value(samples, "syncaerys_connections") == 1


def test_two_gateways_of_one_handler_class_get_distinct_labels() -> None:
    first, second = syncaerys.websocket(Recorder()), syncaerys.websocket(Recorder())
    body, _ = syncaerys.metrics.exposition(first, second)
    assert 'gateway="Recorder"' in body.decode() and 'gateway="Recorder-2"' in body.decode()
    with pytest.raises(TypeError, match="gateways"):
        syncaerys.metrics.exposition(Recorder())  # type: ignore[arg-type]
