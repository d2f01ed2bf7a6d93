"""kvdex.RedisKVStore on a real 3-master Redis Cluster (redis_cluster_server.py):
LlamaIndex's layout read and written by both LlamaIndex (redis-py's RedisCluster client)
and kvdex, the sharded layout, and asyncio gathers."""

from __future__ import annotations

import asyncio

import pytest
from redis_cluster_server import redis_cli, redis_cluster  # noqa: F401

import kvdex

redis = pytest.importorskip("redis")


def _flush(cluster) -> None:
    for port in cluster.ports:
        assert redis_cli(port, "FLUSHALL") == "OK"


@pytest.fixture()
def cluster(redis_cluster):
    _flush(redis_cluster)
    yield redis_cluster
    _flush(redis_cluster)


def _llama_cluster_store(cluster):
    from llama_index.storage.kvstore.redis import RedisKVStore as LlamaRedisKVStore
    from redis.cluster import RedisCluster

    client = RedisCluster(host="127.0.0.1", port=cluster.ports[0])
    return LlamaRedisKVStore(redis_client=client), client


def test_plain_layout_is_shared_with_llamaindex_on_the_cluster(cluster):
    store = kvdex.RedisKVStore(redis_uri=cluster.uri)
    llama, client = _llama_cluster_store(cluster)
    try:
        docs = {f"doc-{i}": {"text": f"t{i}", "n": i, "nested": {"ü": [1, 2.5, None]}} for i in range(300)}
        store.put_all(list(docs.items()), collection="docstore/data", batch_size=64)
        assert llama.get_all(collection="docstore/data") == docs
        llama.put("from-llama", {"v": "x"}, collection="docstore/metadata")
        assert store.get("from-llama", collection="docstore/metadata") == {"v": "x"}
        assert store.get_all(collection="docstore/data") == docs
        assert store.delete("doc-0", collection="docstore/data")
        assert llama.get("doc-0", collection="docstore/data") is None
        # One hash per collection, on the master its name's slot maps to.
        assert client.hlen("docstore/data") == 299
    finally:
        client.close()


def test_sharded_layout_spreads_and_refuses_llamaindex(cluster):
    store = kvdex.RedisKVStore(redis_uri=cluster.uri + "&shards=3")
    pairs = [(f"k{i}", {"i": i}) for i in range(3000)]
    store.put_all(pairs, collection="big", batch_size=500)
    assert store.get_all(collection="big") == dict(pairs)
    assert store.get("k2999", collection="big") == {"i": 2999}
    keys_per_master = [int(redis_cli(p, "DBSIZE")) for p in cluster.ports]
    assert all(n >= 1 for n in keys_per_master), keys_per_master  # every master holds a shard
    llama, client = _llama_cluster_store(cluster)
    try:
        with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
            llama.get_all(collection="big")
    finally:
        client.close()
    plain = kvdex.RedisKVStore(redis_uri=cluster.uri)
    with pytest.raises(kvdex.exceptions.FailedPreconditionError, match="sharded layout"):
        plain.get("k1", collection="big")


def test_gathered_agets_on_the_cluster(cluster):
    store = kvdex.RedisKVStore(redis_uri=cluster.uri + "&shards=3")
    store.put_all([(f"k{i}", {"i": i}) for i in range(2000)], collection="c")

    async def gather():
        return await asyncio.gather(*(store.aget(f"k{i}", collection="c") for i in range(2000)))

    assert asyncio.run(gather()) == [{"i": i} for i in range(2000)]

    async def put_then_get_all():
        await store.aput_all([(f"n{i}", {"n": i}) for i in range(500)], collection="c", batch_size=100)
        return await store.aget_all(collection="c")

    assert len(asyncio.run(put_then_get_all())) == 2500
