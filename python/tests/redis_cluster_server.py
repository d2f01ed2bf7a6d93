"""A real Redis Cluster for kvdex's Python tests (the pytest side of the C++ tests'
``tests/redis_cluster/local_redis_cluster.h``).

``LocalRedisCluster`` starts Debian's ``redis-server`` with ``--cluster-enabled yes`` on
127.0.0.1 only, at free ports in 21000..29000 (cluster bus +10000), in a temporary
directory, joins the nodes with ``redis-cli --cluster create ... --cluster-yes`` and
returns once every node says ``cluster_state:ok`` and lists the same slot map. Each node
is started with ``PR_SET_PDEATHSIG(SIGKILL)``, so a crashed test run takes its servers
along; ``stop()`` (the fixtures call it whatever happened) kills every node and removes
the directory.

Use the fixtures from a test module with::

    from redis_cluster_server import redis_cluster  # noqa: F401  (session-scoped)

    def test_something(redis_cluster):
        uri = redis_cluster.uri  # "redis://127.0.0.1:<port>?cluster=1"
"""

from __future__ import annotations

import ctypes
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def redis_cli(port: int, *args: str, timeout: float = 10.0) -> str:
    """One redis-cli command against 127.0.0.1:port; its output ('' if it failed)."""
    done = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else ""


class LocalRedisCluster:
    def __init__(self, masters: int = 3, replicas_per_master: int = 0, node_timeout_ms: int = 1000):
        if masters < 3:
            raise ValueError("Redis Cluster needs at least 3 masters")
        if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
            raise RuntimeError("redis-server/redis-cli not installed (scripts/install-deps.sh)")
        self.masters = masters
        self.replicas_per_master = replicas_per_master
        self.node_timeout_ms = node_timeout_ms
        self.dir = Path(tempfile.mkdtemp(prefix="kvdex-redis-cluster-"))
        self.ports: list[int] = []
        self.processes: dict[int, subprocess.Popen] = {}
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    @property
    def seed_uri(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}"

    @property
    def uri(self) -> str:
        return self.seed_uri + "?cluster=1"

    def _choose_ports(self, count: int) -> list[int]:
        rng = random.Random()
        for _ in range(200):
            base = rng.randrange(21000, 29000 - count)
            ports = list(range(base, base + count))
            if all(_port_free(p) and _port_free(p + 10000) for p in ports):
                return ports
        raise RuntimeError("no free ports for a Redis Cluster in 21000..29000")

    def _start_node(self, port: int) -> None:
        node_dir = self.dir / str(port)
        node_dir.mkdir(exist_ok=True)
        args = [
            "redis-server", "--bind", "127.0.0.1", "--port", str(port),
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(self.node_timeout_ms),
            "--dir", str(node_dir), "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--logfile", str(node_dir / "redis.log"),
        ]  # fmt: skip
        self.processes[port] = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )  # fmt: skip
        for _ in range(200):
            if redis_cli(port, "PING") == "PONG":
                return
            if self.processes[port].poll() is not None:
                break
            time.sleep(0.05)
        log = (node_dir / "redis.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"redis-server on 127.0.0.1:{port} did not start; log:\n{log}")

    def _start(self) -> None:
        self.ports = self._choose_ports(self.masters * (1 + self.replicas_per_master))
        for port in self.ports:
            self._start_node(port)
        create = subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
             "--cluster-replicas", str(self.replicas_per_master), "--cluster-yes"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if create.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{create.stdout}\n{create.stderr}")
        self.wait_until_ready()

    def _slot_map(self, port: int) -> str:
        """CLUSTER SHARDS-like text of the slot map as 127.0.0.1:port sees it."""
        return redis_cli(port, "CLUSTER", "SLOTS")

    def wait_until_ready(self, timeout: float = 30.0) -> None:
        """Every running node says cluster_state:ok, all slots assigned, same map."""
        deadline = time.monotonic() + timeout
        why = ""
        while time.monotonic() < deadline:
            running = [p for p in self.ports if self.is_running(p)]
            infos = {p: redis_cli(p, "CLUSTER", "INFO") for p in running}
            maps = {p: self._slot_map(p) for p in running}
            if not all("cluster_state:ok" in i and "cluster_slots_assigned:16384" in i for i in infos.values()):
                why = "not every node says cluster_state:ok"
            elif not all(self._replica_synced(p) for p in running):
                why = "a replica has not finished its first sync"
            elif not all(self._serving_masters_running(p) for p in running):
                why = "a node still names a stopped node as a serving master"
            elif len(set(maps.values())) != 1:
                why = "nodes disagree on CLUSTER SLOTS"
            elif len(running) == len(self.ports) and len(self.masters_ports()) != self.masters:
                why = "not every master is known yet"
            else:
                return
            time.sleep(0.1)
        raise RuntimeError(f"Redis Cluster in {self.dir} not ready after {timeout} s: {why}")

    def _replica_synced(self, port: int) -> bool:
        replication = redis_cli(port, "INFO", "replication")
        return "role:slave" not in replication or "master_link_status:up" in replication

    def _serving_masters_running(self, port: int) -> bool:
        """Every master that serves slots in 127.0.0.1:port's CLUSTER NODES is running."""
        for line in redis_cli(port, "CLUSTER", "NODES").splitlines():
            fields = line.split()
            if len(fields) > 8 and "master" in fields[2].split(","):
                node_port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
                if not self.is_running(node_port):
                    return False
        return True

    def masters_ports(self) -> list[int]:
        """Ports of the nodes that say role:master right now."""
        return [p for p in self.ports if self.is_running(p) and "role:master" in redis_cli(p, "INFO", "replication")]

    def is_running(self, port: int) -> bool:
        process = self.processes.get(port)
        return process is not None and process.poll() is None

    def kill_node(self, port: int) -> None:
        """SIGKILL (no shutdown, nothing saved)."""
        process = self.processes.get(port)
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    def stop(self) -> None:
        for port in list(self.processes):
            self.kill_node(port)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_cluster():
    """A 3-master Redis Cluster shared by the session (tests must not change its topology)."""
    cluster = LocalRedisCluster(masters=3)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture()
def redis_cluster_with_replicas():
    """A fresh 3-master, 1-replica-each cluster of the test's own, for failover tests."""
    cluster = LocalRedisCluster(masters=3, replicas_per_master=1)
    try:
        yield cluster
    finally:
        cluster.stop()
