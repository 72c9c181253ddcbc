"""Close codes are chosen by the peer: as metric labels they are bucketed, not one series per code.

Before, 300 distinct client close codes made 300 series of ``syncaerys_closes_total``.
"""

from __future__ import annotations

import pytest

pytest.importorskip("prometheus_client")

from websockets.sync.client import connect

import syncaerys
import syncaerys.metrics
from tests.test_metrics import scrape
from tests.utils import Recorder
from tests.utils import wait_until

CODES = [*range(4000, 4010), *range(3000, 3005), 1001, 1001, 4999]


def test_client_chosen_close_codes_are_bucketed() -> None:
    recorder = Recorder()
    gateway = syncaerys.websocket(recorder)
    router = syncaerys.Router().get("/chat", gateway).get("/metrics", syncaerys.metrics.wsgi_app(gateway))
    with syncaerys.Server(router, port=0) as server:
        for code in CODES:
            with connect(f"ws://127.0.0.1:{server.port}/chat") as ws:
                ws.close(code=code)
        wait_until(lambda: len([e for e in recorder.events if e[0] == "close"]) == len(CODES))
        samples = scrape(f"http://127.0.0.1:{server.port}/metrics")
    closes = {
        dict(labels)["code"]: number for (name, labels), number in samples.items() if name == "syncaerys_closes_total"
    }
    assert closes == {"1001": 2, "3000-3999 registered": 5, "4000-4999 application": 11}


def test_the_buckets() -> None:
    buckets = syncaerys.metrics.close_code_buckets({1000: 3, 1006: 1, 1004: 1, 2999: 1, 3500: 2, 4000: 1, 4999: 1})
    assert buckets == {"1000": 3, "1006": 1, "other": 2, "3000-3999 registered": 2, "4000-4999 application": 2}
