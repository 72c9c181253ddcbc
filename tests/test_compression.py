"""permessage-deflate (RFC 7692) against a live server."""

from __future__ import annotations

import json
import threading
import zlib

import pytest
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.sync.client import connect

from syncaerys.protocol.deflate import negotiate
from tests.utils import PROMPTLY
from tests.utils import RawClient
from tests.utils import Recorder
from tests.utils import serve
from tests.utils import url

NO_CONTEXT = ClientPerMessageDeflateFactory(server_no_context_takeover=True, client_no_context_takeover=True)


def test_negotiated_only_when_enabled_and_offered() -> None:
    with serve(Recorder(), compression=True) as server:
        with connect(url(server)) as ws:
            assert ws.response.headers["Sec-WebSocket-Extensions"].startswith("permessage-deflate")  # type: ignore[union-attr]
        with connect(url(server), compression=None) as ws:
            assert "Sec-WebSocket-Extensions" not in ws.response.headers  # type: ignore[union-attr]
    with serve(Recorder()) as server, connect(url(server)) as ws:
        assert "Sec-WebSocket-Extensions" not in ws.response.headers  # type: ignore[union-attr]


@pytest.mark.parametrize("extension", [ClientPerMessageDeflateFactory(), NO_CONTEXT], ids=["context", "no-context"])
def test_echo_round_trips_compressed(extension: ClientPerMessageDeflateFactory) -> None:
    recorder = Recorder()
    with serve(recorder, compression=True, compression_threshold=0) as server:
        with connect(url(server), extensions=[extension]) as ws:
            for message in ["", "a", "x" * 70_000, b"\x00\x01" * 50_000, "é€𝄞" * 5000]:
                ws.send(message)  # type: ignore[arg-type]
                assert ws.recv(timeout=PROMPTLY) == message
            client_id = recorder.wait_event("open")[1]
            info = recorder.endpoint.get_info(client_id)
            assert info is not None
            assert info.compression is True
            # Compressed on the wire: far fewer bytes than the 285,000 echoed.
            assert info.bytes_sent < 50_000


def test_threshold_sends_small_messages_uncompressed() -> None:
    with serve(Recorder(), compression=True, compression_threshold=1000) as server:
        client = RawClient(
            server.port, headers={"Sec-WebSocket-Extensions": "permessage-deflate; server_no_context_takeover"}
        )
        assert "permessage-deflate" in client.head
        client.send_frame(0x1, b"short")
        opcode_byte_and_payload = client.recv_frame()
        assert opcode_byte_and_payload == (0x1, True, b"short")
        client.close()


def test_concurrent_sends_with_compression_never_corrupt_the_stream() -> None:
    """Anchor P2: simple-websocket's shared compressor corrupted the stream after 753 of 1,600."""
    ready = threading.Event()
    recorder = Recorder()

    def on_open(client_id: int) -> None:
        def sender(thread: int) -> None:
            for sequence in range(200):
                body = json.dumps({"thread": thread, "sequence": sequence, "pad": "p" * 500})
                recorder.endpoint.send(body, client_id)

        threads = [threading.Thread(target=sender, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        ready.set()

    class Sender(Recorder):
        def on_open(self, client_id: int, handshake_data: object) -> None:
            super().on_open(client_id, handshake_data)
            on_open(client_id)

    recorder = Sender()
    with serve(recorder, compression=True, compression_threshold=0, max_send_queue=None) as server:
        with connect(url(server)) as ws:
            last = dict.fromkeys(range(8), -1)
            for _ in range(1600):
                message = json.loads(ws.recv(timeout=PROMPTLY))
                assert message["sequence"] == last[message["thread"]] + 1
                last[message["thread"]] = message["sequence"]
            assert last == dict.fromkeys(range(8), 199)
            assert ready.wait(PROMPTLY)


def test_broadcast_to_mixed_compression_clients() -> None:
    recorder = Recorder()
    with serve(recorder, compression=True, compression_threshold=0) as server:
        with (
            connect(url(server)) as context,
            connect(url(server), extensions=[NO_CONTEXT]) as no_context,
            connect(url(server), compression=None) as plain,
        ):
            recorder.wait_for(lambda events: [e[0] for e in events].count("open") == 3)
            for number in range(3):
                result = recorder.endpoint.broadcast(f"news {number} " + "n" * 3000).result(PROMPTLY)
                assert result.delivered == 3
            for ws in (context, no_context, plain):
                assert [ws.recv(timeout=PROMPTLY) for _ in range(3)] == [f"news {n} " + "n" * 3000 for n in range(3)]


def test_decompression_bomb_is_1009() -> None:
    recorder = Recorder()
    with serve(recorder, compression=True, max_message_size=100_000) as server:
        client = RawClient(server.port, headers={"Sec-WebSocket-Extensions": "permessage-deflate"})
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        bomb = compressor.compress(b"\x00" * 10_000_000) + compressor.flush(zlib.Z_SYNC_FLUSH)
        assert len(bomb) < 20_000
        client.send_frame(0x2, bomb[:-4], rsv=4)
        assert client.recv_close()[0] == 1009
        assert recorder.wait_event("close")[2] == 1009
        client.close()


def test_rsv1_without_negotiation_is_1002() -> None:
    with serve(Recorder(), compression=True) as server:
        client = RawClient(server.port)  # no extension offered
        client.send_frame(0x1, b"x", rsv=4)
        assert client.recv_close()[0] == 1002
        client.close()


def test_rsv1_on_a_continuation_is_1002() -> None:
    with serve(Recorder(), compression=True) as server:
        client = RawClient(server.port, headers={"Sec-WebSocket-Extensions": "permessage-deflate"})
        client.send_frame(0x1, b"", fin=False)
        client.send_frame(0x0, b"x", rsv=4)
        assert client.recv_close()[0] == 1002
        client.close()


@pytest.mark.parametrize(
    ("offer", "expected"),
    [
        ("permessage-deflate", "permessage-deflate"),
        ("permessage-deflate; client_max_window_bits", "permessage-deflate"),
        (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ),
        ("permessage-deflate; server_max_window_bits=10", "permessage-deflate; server_max_window_bits=10"),
        ("permessage-deflate; server_max_window_bits=15", "permessage-deflate; server_max_window_bits=12"),
        # zlib cannot honour a window of 8: decline it, take the next offer.
        ("permessage-deflate; server_max_window_bits=8, permessage-deflate", "permessage-deflate"),
        ("permessage-deflate; unknown=1", None),
        ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", None),
        ("permessage-deflate; server_max_window_bits=16", None),
        ("permessage-deflate; client_max_window_bits=7", None),
        ("x-webkit-deflate-frame", None),
        (None, None),
    ],
)
def test_negotiation(offer: str | None, expected: str | None) -> None:
    params = negotiate(offer, 12)
    assert (params.response_header() if params else None) == expected
