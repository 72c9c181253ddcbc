"""Prometheus metrics for operators: ``pip install 'syncaerys[metrics]'`` (the ``prometheus_client`` package).

::

    import syncaerys.metrics

    gateway = syncaerys.websocket(Chat())
    router = syncaerys.Router().get("/chat", gateway).get("/metrics", syncaerys.metrics.wsgi_app(gateway))

or, to export them with your own metrics, ``prometheus_client.REGISTRY.register(
syncaerys.metrics.Collector(gateway))``. Under Flask::

    @app.get("/metrics")
    def metrics():
        return syncaerys.metrics.exposition(gateway)

Every metric carries a ``gateway`` label (the handler's class name, numbered
when several gateways share one). What is exported:

* ``syncaerys_connections``: open clients (gauge);
* ``syncaerys_handshakes_total{outcome}``: ``accepted``, or the HTTP status of the refusal;
* ``syncaerys_messages_received_total``, ``syncaerys_messages_sent_total``,
  ``syncaerys_bytes_received_total``, ``syncaerys_bytes_sent_total``,
  ``syncaerys_frames_received_total``, ``syncaerys_frames_sent_total``;
* ``syncaerys_closes_total{code}``: closed connections by close code (1006: the TCP connection dropped);
  the peer chooses its code, so only the codes RFC 6455 7.4.1 names are labels of their own, the rest
  are ``3000-3999 registered``, ``4000-4999 application`` or ``other`` (a bounded set of series);
* ``syncaerys_send_queue_bytes``: bytes queued for the open clients (gauge);
* ``syncaerys_heartbeat_latency_seconds``: ping to pong round trips (histogram);
* ``syncaerys_backplane_up`` (gauge, 1 or 0), ``syncaerys_backplane_publish_errors_total``,
  ``syncaerys_backplane_malformed_total`` (messages on the backplane's channels dropped as malformed)
  and ``syncaerys_backplane_redis_errors_total`` (commands Redis refused with an error reply), only
  for a gateway with a cluster backplane (one without has no such state to report).

A scrape reads the counters the gateway keeps anyway and makes one pass
over the open clients: nothing is added to the send or receive paths.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any

from werkzeug.wrappers import Response

from .backplane.base import LocalBackplane
from .client.stats import LATENCY_BUCKETS
from .gateway import Gateway

try:
    from prometheus_client import CONTENT_TYPE_LATEST
    from prometheus_client import CollectorRegistry
    from prometheus_client import generate_latest
    from prometheus_client import make_wsgi_app
    from prometheus_client.core import CounterMetricFamily
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.core import HistogramMetricFamily
    from prometheus_client.registry import Collector as _PrometheusCollector
except ImportError as error:  # pragma: no cover - depends on the install
    raise ImportError("syncaerys.metrics needs prometheus_client: pip install 'syncaerys[metrics]'") from error

__all__ = ["Collector", "exposition", "wsgi_app"]


def _names(gateways: Iterable[Gateway]) -> list[tuple[str, Gateway]]:
    named: list[tuple[str, Gateway]] = []
    seen: dict[str, int] = {}
    for gateway in gateways:
        if not isinstance(gateway, Gateway):
            raise TypeError(f"syncaerys.metrics exports gateways (from syncaerys.websocket()), not {gateway!r}")
        base = type(gateway.handler).__name__
        seen[base] = seen.get(base, 0) + 1
        named.append((base if seen[base] == 1 else f"{base}-{seen[base]}", gateway))
    return named


#: Close codes with a label of their own: those RFC 6455 7.4.1 and the IANA registry name.
NAMED_CLOSE_CODES = frozenset({*range(1000, 1004), *range(1005, 1016)})


def close_code_buckets(by_code: Mapping[int, int]) -> dict[str, int]:
    """Closes by label: a named code as itself, the others by range. Pure; thread-safe; never blocks."""
    buckets: dict[str, int] = {}
    for code, number in by_code.items():
        if code in NAMED_CLOSE_CODES:
            label = str(code)
        elif 3000 <= code <= 3999:
            label = "3000-3999 registered"
        elif 4000 <= code <= 4999:
            label = "4000-4999 application"
        else:
            label = "other"
        buckets[label] = buckets.get(label, 0) + number
    return buckets


class Collector(_PrometheusCollector):
    """A ``prometheus_client`` collector of the given gateways' metrics (thread-safe; a scrape never blocks)."""

    def __init__(self, *gateways: Gateway) -> None:
        if not gateways:
            raise TypeError("Collector() needs at least one gateway")
        self._gateways = _names(gateways)

    def collect(self) -> Iterator[Any]:
        """The metric families, read from the gateways' counters (``prometheus_client`` calls it at each scrape).

        Thread-safe; never blocks.
        """
        labels = ["gateway"]
        connections = GaugeMetricFamily("syncaerys_connections", "Open websocket clients.", labels=labels)
        queued = GaugeMetricFamily("syncaerys_send_queue_bytes", "Bytes queued for the open clients.", labels=labels)
        handshakes = CounterMetricFamily(
            "syncaerys_handshakes", "Upgrade requests by outcome.", labels=[*labels, "outcome"]
        )
        closes = CounterMetricFamily("syncaerys_closes", "Closed clients by close code.", labels=[*labels, "code"])
        traffic = {
            name: CounterMetricFamily(f"syncaerys_{name}", f"{name.replace('_', ' ').capitalize()}.", labels=labels)
            for name in (
                "messages_received",
                "messages_sent",
                "bytes_received",
                "bytes_sent",
                "frames_received",
                "frames_sent",
            )
        }
        latency = HistogramMetricFamily(
            "syncaerys_heartbeat_latency_seconds", "Heartbeat ping to pong round trips.", labels=labels
        )
        backplane_up = GaugeMetricFamily(
            "syncaerys_backplane_up", "Whether the backplane reaches the other processes.", labels=labels
        )
        publish_errors = CounterMetricFamily(
            "syncaerys_backplane_publish_errors", "Operations not published to the other processes.", labels=labels
        )
        redis_errors = CounterMetricFamily(
            "syncaerys_backplane_redis_errors",
            "Commands the backplane's Redis refused with an error reply (not a lost connection).",
            labels=labels,
        )
        malformed = CounterMetricFamily(
            "syncaerys_backplane_malformed", "Backplane messages dropped as malformed.", labels=labels
        )
        for name, gateway in self._gateways:
            open_clients, queued_bytes, live = gateway.live_traffic()
            by_outcome, by_code, closed, buckets, count, total = gateway.stats.snapshot()
            connections.add_metric([name], open_clients)
            queued.add_metric([name], queued_bytes)
            for outcome, number in sorted(by_outcome.items()):
                handshakes.add_metric([name, outcome], number)
            for label, number in sorted(close_code_buckets(by_code).items()):
                closes.add_metric([name, label], number)
            for key, family in traffic.items():
                field = key.replace("_received", "_in").replace("_sent", "_out")
                family.add_metric([name], getattr(live, field) + getattr(closed, field))
            cumulative, running = [], 0
            for bound, number in zip(LATENCY_BUCKETS, buckets, strict=True):
                running += number
                cumulative.append((repr(bound), running))
            cumulative.append(("+Inf", count))
            latency.add_metric([name], cumulative, total)
            backplane = gateway.endpoint.backplane
            if isinstance(backplane, LocalBackplane):
                continue  # no other process to reach: no up or down, no publishing
            backplane_up.add_metric([name], 1 if backplane.up else 0)
            publish_errors.add_metric([name], backplane.publish_errors)
            malformed.add_metric([name], backplane.malformed_messages)
            redis_errors.add_metric([name], backplane.redis_errors)
        yield connections
        yield queued
        yield handshakes
        yield closes
        yield from traffic.values()
        yield latency
        yield backplane_up
        yield publish_errors
        yield malformed
        yield redis_errors


def _registry(gateways: tuple[Gateway, ...]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector(*gateways))
    return registry


def exposition(*gateways: Gateway) -> Response:
    """The gateways' metrics as a response in the Prometheus text format, for a Flask view to return.

    A werkzeug response (a WSGI application too): ``.get_data()`` is the text and
    ``.content_type`` its type. Thread-safe; never blocks.
    """
    return Response(generate_latest(_registry(gateways)), status=200, content_type=CONTENT_TYPE_LATEST)


def wsgi_app(*gateways: Gateway) -> Any:
    """A WSGI application serving the gateways' metrics (mount it on ``/metrics``).

    The application is thread-safe (each scrape is a request in its own thread) and never blocks.
    """
    return make_wsgi_app(_registry(gateways))
