"""What anyone can PUBLISH on a backplane channel: hostile JSON headers, built field by field.

Random bytes (``wire.py``) rarely make a JSON object with the right keys;
this harness writes headers whose fields are the wire format's own, with
values of every JSON type and size (1e400, NaN, integers of thousands of
digits, nesting thousands deep, lone surrogates, close codes a peer may not
send, text payloads that are not UTF-8). What must hold: ``decode`` raises
only ``WireError``, and an operation it accepts is one a node may apply as
it is, by an independent statement of the rules (RFC 6455 5.6, 7.4, 8.1).

An input starting with byte 0 is taken as is: the header's JSON text, a
newline, the payload (so that the seed corpus can hold the attacks by name).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable

import _common
import atheris

with atheris.instrument_imports(include=["syncaerys"]):
    from syncaerys.backplane import wire

KEYS = ["k", "o", "b", "ids", "x", "r", "c", "why", "q", "a", "info", "zz"]
KINDS = sorted(wire.KINDS)
NUMBERS = ["1e400", "-1e400", "NaN", "Infinity", "-Infinity", "1.0", "0.5", "-0.0", "1e3", "2e0"]
CODES = [0, 999, 1000, 1001, 1004, 1005, 1006, 1012, 1014, 1015, 1016, 2999, 3000, 4999, 5000, 65535, 70000, -1]
# RFC 6455 7.4.1 and 7.4.2 with the IANA registry: what an endpoint may put in a close frame.
SENDABLE = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, *range(3000, 5000)}
ONE_ID = {wire.SEND, wire.INFO}
SOME_IDS = {wire.MULTICAST, wire.CLOSE, wire.JOIN, wire.LEAVE}


def _pick(fdp: atheris.FuzzedDataProvider, choices: list[str]) -> str:
    return choices[fdp.ConsumeIntInRange(0, len(choices) - 1)]


def _nested(fdp: atheris.FuzzedDataProvider) -> str:
    n = fdp.ConsumeIntInRange(1, 200_000)
    return "[" * n + "]" * n


# Each makes the JSON text of a value that holds no other, often a hostile one.
LEAVES: list[Callable[[atheris.FuzzedDataProvider], str]] = [
    lambda fdp: str(fdp.ConsumeIntInRange(-(1 << 64), 1 << 64)),
    lambda fdp: str(fdp.ConsumeIntInRange(-2, 1 << 53)),
    lambda fdp: "9" * fdp.ConsumeIntInRange(1, 6000),
    lambda fdp: _pick(fdp, NUMBERS),
    lambda fdp: _pick(fdp, ["true", "false", "null"]),
    # ensure_ascii writes lone surrogates as \udXXX escapes, which json.loads gives back.
    lambda fdp: json.dumps(fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 200))),
    lambda fdp: str(CODES[fdp.ConsumeIntInRange(0, len(CODES) - 1)]),
    _nested,
    lambda fdp: json.dumps(_pick(fdp, KINDS)),
    lambda fdp: (
        "[" + ",".join(str(fdp.ConsumeIntInRange(0, 1 << 53)) for _ in range(fdp.ConsumeIntInRange(0, 3))) + "]"
    ),
]


def value(fdp: atheris.FuzzedDataProvider, depth: int = 0) -> str:
    """The JSON text of a value of any type: a leaf, or (not too deep) a list or an object of values."""
    choice = fdp.ConsumeIntInRange(0, len(LEAVES) + 1 if depth < 3 else len(LEAVES) - 1)
    if choice < len(LEAVES):
        return LEAVES[choice](fdp)
    if choice == len(LEAVES):
        return "[" + ",".join(value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 3))) + "]"
    return "{" + ",".join(f'"{key}":{value(fdp, depth + 1)}' for key in fields(fdp)) + "}"


def fields(fdp: atheris.FuzzedDataProvider) -> list[str]:
    return [KEYS[fdp.ConsumeIntInRange(0, len(KEYS) - 1)] for _ in range(fdp.ConsumeIntInRange(0, 6))]


def message(data: bytes) -> bytes:
    if data[:1] == b"\x00":
        head, _, payload = data[1:].partition(b"\n")
    else:
        fdp = atheris.FuzzedDataProvider(data)
        kind = json.dumps(KINDS[fdp.ConsumeIntInRange(0, len(KINDS) - 1)])
        parts = [f'"k":{kind}'] if fdp.ConsumeBool() else []
        parts.extend(f'"{key}":{value(fdp)}' for key in fields(fdp))
        head = ("{" + ",".join(parts) + "}").encode("utf-8", "surrogatepass")
        payload = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 16))
    return b"SYA1" + struct.pack(">I", len(head)) + head + payload


def check(op: wire.Operation) -> None:
    """Raise AssertionError unless a node may apply ``op`` as it is."""
    problems = _field_problems(op) + _kind_problems(op)
    if problems:
        raise AssertionError(f"decode accepted {op!r}: {'; '.join(problems)}")


def _field_problems(op: wire.Operation) -> list[str]:
    problems = []
    if op.kind not in wire.KINDS:
        problems.append("unknown kind")
    if type(op.origin) is not int or not 0 <= op.origin < wire.MAX_NODES:
        problems.append("origin not a node number")
    problems.extend(f"{i!r} is not a client id" for i in op.client_ids + op.except_ids if not _is_client_id(i))
    if not op.binary and op.kind in (wire.SEND, wire.MULTICAST, wire.BROADCAST):
        try:
            op.payload.decode("utf-8")
        except UnicodeDecodeError:
            problems.append("a text payload that is not UTF-8 (RFC 6455 8.1)")
    for name in ("room", "reason", "request_id"):
        text = getattr(op, name)
        if text is not None and not (isinstance(text, str) and text.encode("utf-8", "replace") == _utf8(text)):
            problems.append(f"{name} is not Unicode text")
    if op.kind == wire.CLOSE:
        if type(op.code) is not int or op.code not in SENDABLE:
            problems.append(f"close code {op.code!r} may not be sent (RFC 6455 7.4)")
        if len(_utf8(op.reason)) > 123:
            problems.append("a close reason longer than 123 bytes (RFC 6455 5.5)")
    return problems


def _kind_problems(op: wire.Operation) -> list[str]:
    problems = []
    if op.kind in ONE_ID and len(op.client_ids) != 1:
        problems.append("not one client")
    if op.kind in SOME_IDS and not op.client_ids:
        problems.append("no client")
    if op.kind in (wire.JOIN, wire.LEAVE) and op.room is None:
        problems.append("no room")
    if op.kind == wire.INFO and not (op.origin and op.request_id):
        problems.append("an info request nobody can answer")
    if op.kind == wire.INFO_REPLY:
        info = op.reply.get("info") if isinstance(op.reply, dict) else ()
        if not op.request_id or not (info is None or isinstance(info, dict)):
            problems.append("an info reply that is not one")
    return problems


def _is_client_id(value: object) -> bool:
    return type(value) is int and 0 < value < 1 << 52


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return b"\x00not unicode"


def test_one_input(data: bytes) -> None:
    try:
        op = wire.decode(message(data))
    except wire.WireError:
        return
    check(op)


if __name__ == "__main__":
    _common.main(test_one_input)
