"""The backplane's wire format (syncaerys/backplane/wire.py): every kind round-trips, bad input raises WireError."""

from __future__ import annotations

import json
import struct

import pytest

from syncaerys.backplane import wire
from syncaerys.backplane.wire import Operation
from syncaerys.backplane.wire import WireError
from syncaerys.backplane.wire import decode
from syncaerys.backplane.wire import encode

EVERY_KIND = [
    Operation(wire.SEND, origin=3, payload="héllo".encode(), client_ids=(3 << 32 | 1,)),
    Operation(wire.SEND, origin=3, binary=True, payload=bytes(range(256)), client_ids=(7 << 32 | 9,)),
    Operation(wire.MULTICAST, origin=1, payload=b"m", client_ids=(1 << 32 | 1, 1 << 32 | 2)),
    Operation(wire.BROADCAST, origin=2, payload=b"b", except_ids=(5, 6)),
    Operation(wire.BROADCAST, origin=2, binary=True, payload=b"\x00SYA1\xff", room="lobby"),
    Operation(wire.BROADCAST, payload=b"", room=""),
    Operation(wire.CLOSE, origin=1, client_ids=(2 << 32 | 3,), code=4001, reason="bye ✓"),
    Operation(wire.JOIN, origin=4, client_ids=(2 << 32 | 3,), room="room with spaces / ü"),
    Operation(wire.LEAVE, origin=4, client_ids=(2 << 32 | 3,), room="r"),
    Operation(wire.INFO, origin=4, client_ids=(2 << 32 | 3,), request_id="abc123"),
    Operation(wire.INFO_REPLY, origin=2, request_id="abc123", reply={"info": {"bytes_read": 10, "latency": None}}),
    Operation(wire.INFO_REPLY, origin=2, request_id="abc123", reply={"info": None}),
]


def test_every_kind_is_covered() -> None:
    assert {op.kind for op in EVERY_KIND} == wire.KINDS


@pytest.mark.parametrize("op", EVERY_KIND, ids=lambda op: op.kind)
def test_round_trip(op: Operation) -> None:
    decoded = decode(encode(op))
    assert decoded == op
    assert decoded.reply == op.reply  # not part of ==


@pytest.mark.parametrize("payload", [b"", b"\x00", bytes(range(256)) * 64, b"SYA1" + struct.pack(">I", 99)])
def test_binary_payloads_travel_as_raw_bytes(payload: bytes) -> None:
    op = Operation(wire.BROADCAST, binary=True, payload=payload)
    data = encode(op)
    assert data.endswith(payload)  # no base64
    assert decode(data).payload == payload


def test_layout_is_magic_header_length_header_payload() -> None:
    data = encode(Operation(wire.SEND, origin=7, payload=b"xyz", client_ids=(1,)))
    assert data[:4] == b"SYA1"
    (length,) = struct.unpack(">I", data[4:8])
    assert json.loads(data[8 : 8 + length]) == {"k": "send", "o": 7, "ids": [1]}
    assert data[8 + length :] == b"xyz"


def test_unknown_header_fields_are_ignored() -> None:
    head = json.dumps({"k": "broadcast", "o": 2, "future": [1, 2], "r": "r"}).encode()
    op = decode(b"SYA1" + struct.pack(">I", len(head)) + head + b"p")
    assert op == Operation(wire.BROADCAST, origin=2, payload=b"p", room="r")


def test_close_code_and_reason_default_for_other_kinds() -> None:
    op = decode(encode(Operation(wire.SEND, code=4000, reason="ignored", client_ids=(1,))))
    assert (op.code, op.reason) == (1000, "")


def test_node_of() -> None:
    assert wire.node_of(5 << wire.NODE_SHIFT | 123) == 5
    assert wire.node_of(123) == 0
    assert wire.node_of((wire.MAX_NODES - 1) << wire.NODE_SHIFT | 0xFFFFFFFF) < wire.MAX_NODES
    assert ((wire.MAX_NODES - 1) << wire.NODE_SHIFT | 0xFFFFFFFF) < 2**52


def message(header: object, payload: bytes = b"") -> bytes:
    head = json.dumps(header).encode()
    return b"SYA1" + struct.pack(">I", len(head)) + head + payload


def raw(head: bytes, payload: bytes = b"") -> bytes:
    """A message with a header json.dumps cannot write."""
    return b"SYA1" + struct.pack(">I", len(head)) + head + payload


MALFORMED = {
    "empty": b"",
    "not bytes": "SYA1\x00\x00\x00\x02{}",
    "other magic": b"SYA2" + encode(Operation(wire.SEND))[4:],
    "magic only": b"SYA1",
    "short length": b"SYA1\x00\x00",
    "length past the end": b"SYA1" + struct.pack(">I", 100) + b"{}",
    "header not json": b"SYA1" + struct.pack(">I", 3) + b"{{{",
    "header not utf-8": b"SYA1" + struct.pack(">I", 2) + b"\xff\xfe",
    "header a list": message(["send"]),
    "header a string": message("send"),
    "no kind": message({"o": 1}),
    "unknown kind": message({"k": "explode"}),
    "kind not a string": message({"k": ["send"]}),
    "origin not a number": message({"k": "send", "o": "one"}),
    "origin null": message({"k": "send", "o": None}),
    "ids not a list": message({"k": "send", "ids": 5}),
    "ids not numbers": message({"k": "send", "ids": ["a"]}),
    "except ids not numbers": message({"k": "broadcast", "x": [{}]}),
    "code not a number": message({"k": "close", "c": "x", "ids": [1]}),
    # Values that parse but that nothing may act on: each raised something other than WireError, or was applied.
    "origin 1e400": raw(b'{"k":"broadcast","o":1e400}'),
    "origin NaN": raw(b'{"k":"broadcast","o":NaN}'),
    "origin a float": message({"k": "broadcast", "o": 1.0}),
    "origin true": message({"k": "broadcast", "o": True}),
    "origin past MAX_NODES": message({"k": "broadcast", "o": wire.MAX_NODES}),
    "origin negative": message({"k": "broadcast", "o": -1}),
    "nested 100,000 deep": raw(b'{"k":"broadcast","a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    "an integer of 5,000 digits": raw(b'{"k":"broadcast","o":' + b"9" * 5000 + b"}"),
    "binary flag 2": message({"k": "broadcast", "b": 2}),
    "binary flag a string": message({"k": "broadcast", "b": "1"}),
    "id zero": message({"k": "send", "ids": [0]}),
    "id of 2**52": message({"k": "send", "ids": [2**52]}),
    "id a float": message({"k": "send", "ids": [1.0]}),
    "ids a string": message({"k": "multicast", "ids": "12"}),
    "room a number": message({"k": "join", "ids": [1], "r": 5}),
    "room a lone surrogate": raw(b'{"k":"join","ids":[1],"r":"\\ud800"}'),
    "close code 70000": message({"k": "close", "ids": [1], "c": 70000}),
    "close code 1006": message({"k": "close", "ids": [1], "c": 1006}),
    "close code 1005": message({"k": "close", "ids": [1], "c": 1005}),
    "close code 2999": message({"k": "close", "ids": [1], "c": 2999}),
    "close reason of 124 bytes": message({"k": "close", "ids": [1], "c": 4000, "why": "r" * 124}),
    "close reason not a string": message({"k": "close", "ids": [1], "why": 5}),
    "text broadcast not UTF-8": message({"k": "broadcast"}, b"\xff"),
    "text send not UTF-8": message({"k": "send", "ids": [1]}, b"caf\xe9"),
    "text multicast cut inside a character": message({"k": "multicast", "ids": [1]}, "é".encode()[:1]),
    "send to no client": message({"k": "send"}),
    "send to two clients": message({"k": "send", "ids": [1, 2]}),
    "multicast to no client": message({"k": "multicast", "ids": []}),
    "close of no client": message({"k": "close"}),
    "join without a room": message({"k": "join", "ids": [1]}),
    "leave of no client": message({"k": "leave", "r": "r"}),
    "info without request id": message({"k": "info", "o": 1, "ids": [1]}),
    "info without origin": message({"k": "info", "ids": [1], "q": "a"}),
    "info reply without reply": message({"k": "info_reply", "q": "a"}),
    "info reply a list": message({"k": "info_reply", "q": "a", "a": [1]}),
    "info reply info a list": message({"k": "info_reply", "q": "a", "a": {"info": [1]}}),
    "request id of 65 bytes": message({"k": "info_reply", "q": "q" * 65, "a": {"info": None}}),
}


def test_a_binary_payload_need_not_be_utf8_nor_a_control_payload() -> None:
    assert decode(message({"k": "broadcast", "b": 1}, b"\xff")).payload == b"\xff"
    # Only sends carry a payload to clients; anything after the header of a close is not looked at.
    assert decode(message({"k": "close", "ids": [1]}, b"\xff")).code == 1000


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_input_raises_wire_error(data: bytes) -> None:
    with pytest.raises(WireError):
        decode(data)


def test_wire_error_is_a_value_error() -> None:
    assert issubclass(WireError, ValueError)
