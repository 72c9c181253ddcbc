"""A cluster across hosts that fail: Redis and two server processes in network namespaces.

The test builds its own little network: a "switch" namespace with two bridges,
one for the backplane (Redis, node A, node B) and one for the clients (nodes A
and B, and the test process through one veth pair). Node A reaches Redis
directly, node B through a fault-injecting TCP proxy (``faultproxy.py``) in its
own namespace. Then: a partition between A and Redis (A's backplane link goes
down, and comes back), and latency and a stall on B's path to Redis. Every wait
is bounded; nothing may hang.

Needs root and iproute2 (``ip netns``); skipped otherwise, mandatory where
``SYNCAERYS_REQUIRE_NETNS=1`` (CI).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.helpers import Node
from tests.cluster.helpers import NodeClient
from tests.cluster.helpers import launch_node
from tests.cluster.helpers import redis_server_path
from tests.utils import PROMPTLY
from tests.utils import wait_until

NODE_TTL = 2.0
REQUEST_TIMEOUT = 0.5
PROXY = Path(__file__).with_name("faultproxy.py")
SUBNET_BP = "10.231.1"  # only inside the lab's namespaces


def free_client_subnet() -> str:
    """A ``10.231.N`` /24 that no route of this namespace uses yet.

    The client bridge is reached from this namespace, so a lab left behind by a
    killed run (its link and route outlive it for a while) or another run's lab
    must not shadow this one's route.
    """
    routes = subprocess.run(["ip", "-4", "route", "show"], capture_output=True, text=True, timeout=30).stdout
    for n in range(2, 255):
        if f"10.231.{n}.0/24" not in routes:
            return f"10.231.{n}"
    raise RuntimeError(f"no free 10.231.N.0/24 for the test's client bridge; routes:\n{routes}")


def netns_problem() -> str | None:
    if shutil.which("ip") is None:
        return "iproute2's ip is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    name = f"sya-probe-{os.getpid()}"
    done = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if done.returncode != 0:
        return f"ip netns add failed: {done.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    problem = netns_problem()
    if problem is not None:
        if os.environ.get("SYNCAERYS_REQUIRE_NETNS") == "1":
            pytest.fail(f"SYNCAERYS_REQUIRE_NETNS=1 but {problem}")
        pytest.skip(problem)
    redis_server_path()  # skips (or fails in CI) without Redis
    network = Lab(f"sy{secrets.token_hex(3)}", free_client_subnet())
    try:
        network.build()
        yield network
    finally:
        network.destroy()


class Lab:
    """The namespaces, bridges and links of one test run (all removed by :meth:`destroy`)."""

    def __init__(self, prefix: str, client_subnet: str) -> None:
        self.prefix = prefix
        self.client_subnet = client_subnet
        self.switch = f"{prefix}-sw"
        self.hosts = {"redis": f"{prefix}-r", "a": f"{prefix}-a", "b": f"{prefix}-b"}
        self.bp_address = {"redis": f"{SUBNET_BP}.1", "a": f"{SUBNET_BP}.2", "b": f"{SUBNET_BP}.3"}
        self.cl_address = {"a": f"{client_subnet}.2", "b": f"{client_subnet}.3"}
        self.root_link = f"{prefix}cl"

    def ip(self, *args: str) -> None:
        done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")

    def link(self, namespace: str | None, name: str, peer: str, address: str, bridge: str) -> None:
        """A veth pair: ``name`` in ``namespace`` (None: this one) with ``address``, ``peer`` on ``bridge``."""
        inside = ["netns", namespace] if namespace else []
        self.ip("link", "add", name, *inside, "type", "veth", "peer", "name", peer, "netns", self.switch)
        self.ip(*(["-n", namespace] if namespace else []), "addr", "add", f"{address}/24", "dev", name)
        self.ip(*(["-n", namespace] if namespace else []), "link", "set", name, "up")
        self.ip("-n", self.switch, "link", "set", peer, "master", bridge, "up")

    def build(self) -> None:
        self.ip("netns", "add", self.switch)
        for namespace in self.hosts.values():
            self.ip("netns", "add", namespace)
            self.ip("-n", namespace, "link", "set", "lo", "up")
        for bridge in ("bp", "cl"):
            self.ip("-n", self.switch, "link", "add", bridge, "type", "bridge")
            self.ip("-n", self.switch, "link", "set", bridge, "up")
        for host, namespace in self.hosts.items():
            self.link(namespace, "bp0", f"bp-{host}", self.bp_address[host], "bp")
        for host in ("a", "b"):
            self.link(self.hosts[host], "cl0", f"cl-{host}", self.cl_address[host], "cl")
        self.link(None, self.root_link, "cl-test", f"{self.client_subnet}.100", "cl")

    def destroy(self) -> None:
        # Deleting a namespace deletes the links in it, and with them their peers, but in the
        # background: this namespace's link (and its route) goes first, at once.
        subprocess.run(["ip", "link", "del", self.root_link], capture_output=True, timeout=30)
        for namespace in [self.switch, *self.hosts.values()]:
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=30)

    def exec_prefix(self, host: str) -> tuple[str, ...]:
        return ("ip", "netns", "exec", self.hosts[host])

    def set_backplane_link(self, host: str, up: bool) -> None:
        self.ip("-n", self.hosts[host], "link", "set", "bp0", "up" if up else "down")


class Proxy:
    """faultproxy.py in a namespace, driven over its stdin."""

    def __init__(self, prefix: tuple[str, ...], target: str, port: int) -> None:
        self.process = subprocess.Popen(
            [*prefix, sys.executable, str(PROXY), target, str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.startswith("PORT "), line
        self.port = int(line.split()[1])

    def command(self, text: str) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == "ok"

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.command("quit")
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(PROMPTLY)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def cluster(lab: Lab, tmp_path: Path) -> Iterator[tuple[Node, Node, Proxy]]:
    with contextlib.ExitStack() as stack:
        redis_log = (tmp_path / "redis.log").open("wb")
        stack.callback(redis_log.close)
        redis = subprocess.Popen(
            [
                *lab.exec_prefix("redis"),
                "redis-server",
                *("--bind", lab.bp_address["redis"], "--port", "6379", "--save", "", "--appendonly", "no"),
                *("--dir", str(tmp_path), "--protected-mode", "no"),  # its own namespace: no one else reaches it
            ],
            stdout=redis_log,
            stderr=subprocess.STDOUT,
        )
        # Last in, first out: killed, then reaped.
        stack.callback(redis.wait)
        stack.callback(redis.kill)
        wait_until(lambda: _redis_answers(lab), timeout=4 * PROMPTLY, interval=0.05)
        proxy = Proxy(lab.exec_prefix("b"), lab.bp_address["redis"], 6379)
        stack.callback(proxy.close)
        nodes = []
        for host, url in (
            ("a", f"redis://{lab.bp_address['redis']}:6379/0"),
            ("b", f"redis://127.0.0.1:{proxy.port}/0"),
        ):
            node = launch_node(
                url,
                tmp_path / f"node-{host}.log",
                channel="netns",
                node_ttl=NODE_TTL,
                request_timeout=REQUEST_TIMEOUT,
                max_reconnect_delay=0.2,
                prefix=lab.exec_prefix(host),
                host="0.0.0.0",
                reach=lab.cl_address[host],
            )
            stack.callback(node.stop)
            node.wait_listening()
            nodes.append(node)
        yield nodes[0], nodes[1], proxy


def _redis_answers(lab: Lab) -> bool:
    done = subprocess.run(
        [*lab.exec_prefix("redis"), "redis-cli", "-h", lab.bp_address["redis"], "ping"], capture_output=True, text=True
    )
    return done.stdout.strip() == "PONG"


def members(client: NodeClient) -> list[int]:
    return list(client.call("clients"))


def send_outcome(client: NodeClient, to: int) -> tuple[str, float]:
    """("ok" or the error's class, seconds) of a send through the backplane."""
    started = time.monotonic()
    reply = client.request("send", data="ping", to=to, timeout=4 * PROMPTLY)
    elapsed = time.monotonic() - started
    return ("ok" if "error" not in reply else str(reply["error"]).split(":")[0]), elapsed


@pytest.mark.timeout(120)
def test_a_partition_between_a_node_and_redis_fails_fast_and_heals(lab: Lab, cluster: tuple[Node, Node, Proxy]) -> None:
    node_a, node_b, _ = cluster
    ca, cb = node_a.connect(), node_b.connect()
    everyone = sorted([ca.id, cb.id])
    wait_until(lambda: members(ca) == everyone and members(cb) == everyone, timeout=4 * PROMPTLY)
    assert send_outcome(ca, cb.id)[0] == "ok"
    cb.expect("ping")

    lab.set_backplane_link("a", up=False)
    ca.expect_event("backplane_down", timeout=NODE_TTL + 4 * PROMPTLY)
    outcome, elapsed = send_outcome(ca, cb.id)
    assert outcome == "BackplaneError" and elapsed < 1.0, (outcome, elapsed)
    assert members(ca) == [ca.id]  # while down: this process only
    # B stops seeing A's clients once A's liveness key expires.
    wait_until(lambda: members(cb) == [cb.id], timeout=NODE_TTL + 4 * PROMPTLY)
    # Local operations keep working: a broadcast reaches this process's clients, and says
    # that it could not reach the others.
    reply = ca.request("broadcast", data="local only")
    assert reply["error"].startswith("BackplaneError") and reply["local_result"]["delivered"] == 1
    ca.expect("local only")

    lab.set_backplane_link("a", up=True)
    ca.expect_event("backplane_up", timeout=4 * PROMPTLY)
    wait_until(lambda: members(ca) == everyone and members(cb) == everyone, timeout=NODE_TTL + 4 * PROMPTLY)
    assert send_outcome(ca, cb.id)[0] == "ok"
    cb.expect("ping")
    assert send_outcome(cb, ca.id)[0] == "ok"
    ca.expect("ping")


@pytest.mark.timeout(120)
def test_latency_and_a_stall_on_the_way_to_redis(cluster: tuple[Node, Node, Proxy]) -> None:
    node_a, node_b, proxy = cluster
    ca, cb = node_a.connect(), node_b.connect()
    everyone = sorted([ca.id, cb.id])
    wait_until(lambda: members(ca) == everyone and members(cb) == everyone, timeout=4 * PROMPTLY)

    # Latency under the request timeout: slower, but everything works.
    proxy.command("latency 0.1")
    assert send_outcome(cb, ca.id)[0] == "ok"
    ca.expect("ping")
    assert sorted(cb.call("clients")) == everyone

    # A stall: B's Redis connections stay open but nothing moves.
    proxy.command("latency 0")
    proxy.command("stall")
    cb.expect_event("backplane_down", timeout=NODE_TTL + 4 * PROMPTLY)
    outcome, elapsed = send_outcome(cb, ca.id)
    assert outcome == "BackplaneError" and elapsed < 1.0, (outcome, elapsed)
    wait_until(lambda: members(ca) == [ca.id], timeout=NODE_TTL + 4 * PROMPTLY)

    proxy.command("resume")
    cb.expect_event("backplane_up", timeout=4 * PROMPTLY)
    wait_until(lambda: members(ca) == everyone and members(cb) == everyone, timeout=NODE_TTL + 4 * PROMPTLY)
    assert send_outcome(cb, ca.id)[0] == "ok"
    ca.expect("ping")
    assert cb.call("up") is True
