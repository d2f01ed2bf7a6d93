"""The Redis Cluster fixture itself: what the cluster tests stand on."""

from __future__ import annotations

import pytest
from redis_cluster_server import LocalRedisCluster, redis_cli, redis_cluster  # noqa: F401


def test_cluster_has_three_masters_on_loopback_and_routes_keys(redis_cluster):
    assert len(redis_cluster.ports) == 3
    assert sorted(redis_cluster.masters_ports()) == sorted(redis_cluster.ports)
    for port in redis_cluster.ports:
        assert "cluster_state:ok" in redis_cli(port, "CLUSTER", "INFO")
        assert redis_cli(port, "CONFIG", "GET", "bind").splitlines()[1] == "127.0.0.1"
    # With -c, redis-cli follows MOVED: keys in every slot range are written and read.
    first = redis_cluster.ports[0]
    for i in range(30):
        assert redis_cli(first, "-c", "SET", f"launcher:{i}", str(i)) == "OK"
    for i in range(30):
        assert redis_cli(first, "-c", "GET", f"launcher:{i}") == str(i)
    keys_per_node = [int(redis_cli(p, "DBSIZE")) for p in redis_cluster.ports]
    assert all(n > 0 for n in keys_per_node), keys_per_node
    for i in range(30):
        redis_cli(first, "-c", "DEL", f"launcher:{i}")


def test_stop_kills_every_node_and_removes_the_directory():
    cluster = LocalRedisCluster(masters=3)
    processes = list(cluster.processes.values())
    ports = list(cluster.ports)
    cluster.stop()
    assert all(p.poll() is not None for p in processes)
    assert not cluster.dir.exists()
    assert all(redis_cli(p, "PING", timeout=5) == "" for p in ports)


def test_a_killed_master_is_replaced_by_its_replica():
    cluster = LocalRedisCluster(masters=3, replicas_per_master=1)
    try:
        assert len(cluster.masters_ports()) == 3
        victim = cluster.masters_ports()[0]
        cluster.kill_node(victim)
        cluster.wait_until_ready()
        assert len(cluster.masters_ports()) == 3  # a replica took over
        assert victim not in cluster.masters_ports()
    finally:
        cluster.stop()


def test_fewer_than_three_masters_is_refused():
    with pytest.raises(ValueError, match="at least 3 masters"):
        LocalRedisCluster(masters=2)
