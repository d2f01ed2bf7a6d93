"""kvdex.RedisKVStore against a real redis-server: LlamaIndex's API and layout,
cross-reading with LlamaIndex's own RedisKVStore and RedisDocumentStore, LlamaIndex's
stores and IngestionPipeline on top, and how many connections gathered agets open."""

from __future__ import annotations

import asyncio
import json
import pickle

import pytest
from _redis_server import redis_server  # noqa: F401 - the fixture

import kvdex
from kvdex import llama_index as kvdex_li


@pytest.fixture
def server(redis_server):  # noqa: F811
    redis_server.client().flushall()
    return redis_server


def _values(n):
    return [
        (f"node-{i}", {"text": f"t\u00e9xt {i}", "n": i, "f": i / 3, "ok": i % 2 == 0, "none": None,
                       "nested": {"list": [1, 2.5, "x"]}})
        for i in range(n)
    ]


def _llama_store(server):
    from llama_index.storage.kvstore.redis import RedisKVStore as LlamaRedisKVStore

    return LlamaRedisKVStore(redis_uri=server.uri)


def test_constructor_and_class_methods_are_llamaindexs(server):
    store = kvdex.RedisKVStore(redis_uri=server.uri)
    assert isinstance(store, kvdex.KVStore)
    store.put("k", {"v": 1})
    assert kvdex.RedisKVStore.from_host_and_port(server.host, server.port).get("k") == {"v": 1}
    assert kvdex.RedisKVStore.from_redis_client(server.client()).get("k") == {"v": 1}
    assert kvdex.RedisKVStore(redis_client=server.client(), socket_timeout=2.5).get("k") == {"v": 1}
    assert pickle.loads(pickle.dumps(store)).get("k") == {"v": 1}
    with pytest.raises(TypeError, match="decode_responses"):
        kvdex.RedisKVStore(redis_uri=server.uri, decode_responses=True)
    with pytest.raises(kvdex.NotSupportedError, match="TLS"):
        kvdex.RedisKVStore(redis_uri=f"rediss://{server.address}")


def test_every_method_with_any_batch_size(server):
    store = kvdex.RedisKVStore(redis_uri=server.uri)
    pairs = _values(25)
    for batch_size in (1, 3, 1000):
        collection = f"batch/{batch_size}"
        store.put_all(pairs, collection, batch_size=batch_size)
        assert store.get_all(collection) == dict(pairs)
    store.put("a", {"v": 1}, collection="c")
    assert store.get("a", collection="c") == {"v": 1}
    assert store.get("missing", collection="c") is None
    assert store.delete("a", collection="c") is True
    assert store.delete("a", collection="c") is False

    async def main():
        await store.aput("b", {"v": 2})
        for batch_size in (1, 4, 1000):
            await store.aput_all(pairs, f"abatch/{batch_size}", batch_size=batch_size)
            assert await store.aget_all(f"abatch/{batch_size}") == dict(pairs)
        assert await store.aget("b") == {"v": 2}
        assert await store.aget("nope") is None
        assert await store.adelete("b") is True
        assert await store.adelete("b") is False

    asyncio.run(main())


def test_same_bytes_as_llamaindex_both_ways(server):
    ours = kvdex.RedisKVStore(redis_uri=server.uri)
    theirs = _llama_store(server)
    pairs = _values(50)
    ours.put_all(pairs, "docstore/data", batch_size=7)
    theirs.put_all([(f"li-{k}", v) for k, v in pairs], "docstore/data")
    raw = server.client()
    for key, value in pairs:
        assert raw.hget("docstore/data", key) == json.dumps(value).encode()
        assert raw.hget("docstore/data", f"li-{key}") == json.dumps(value).encode()
    everything = {**dict(pairs), **{f"li-{k}": v for k, v in pairs}}
    assert ours.get_all("docstore/data") == everything
    assert theirs.get_all("docstore/data") == everything
    assert theirs.get("node-3", "docstore/data") == dict(pairs)["node-3"]
    assert ours.delete("li-node-1", "docstore/data")
    assert theirs.get("li-node-1", "docstore/data") is None


def test_documents_cross_read_with_llamaindex_redis_docstore(server):
    from llama_index.core.schema import Document, TextNode
    from llama_index.storage.docstore.redis import RedisDocumentStore

    docs = [Document(text=f"document {i}", id_=f"doc-{i}", metadata={"i": i}) for i in range(20)]
    nodes = [TextNode(text=f"node {i}", id_=f"node-{i}") for i in range(20)]
    theirs = RedisDocumentStore(redis_kvstore=_llama_store(server), namespace="li")
    theirs.add_documents(docs)
    ours = RedisDocumentStore(redis_kvstore=kvdex_li.RedisKVStore(redis_uri=server.uri), namespace="li")
    assert {d.id_: d.text for d in ours.docs.values()} == {d.id_: d.text for d in docs}
    assert ours.get_document("doc-3").metadata == {"i": 3}
    assert ours.get_document_hash("doc-5") == theirs.get_document_hash("doc-5")
    # After install(), RedisDocumentStore reads a kvdex store one value at a time.
    kvdex_li.install()
    try:
        streamed = RedisDocumentStore(redis_kvstore=kvdex_li.RedisKVStore(redis_uri=server.uri),
                                      namespace="li")
        calls = []
        real_iter_items = streamed._kvstore.iter_items
        streamed._kvstore.iter_items = lambda c: calls.append(c) or real_iter_items(c)
        assert ({k: n.to_dict() for k, n in streamed.docs.items()}
                == {k: n.to_dict() for k, n in theirs.docs.items()})
        assert streamed.get_all_ref_doc_info() == theirs.get_all_ref_doc_info()
        assert calls == [streamed._node_collection, streamed._ref_doc_collection]
    finally:
        kvdex_li.uninstall()
    # And the reverse: kvdex writes, LlamaIndex reads.
    ours_b = RedisDocumentStore(redis_kvstore=kvdex_li.RedisKVStore(redis_uri=server.uri), namespace="kv")
    ours_b.add_documents(nodes, batch_size=8)
    theirs_b = RedisDocumentStore(redis_kvstore=_llama_store(server), namespace="kv")
    assert {n.id_: n.text for n in theirs_b.docs.values()} == {n.id_: n.text for n in nodes}
    raw = server.client()
    for name in ("kv/data", "kv/metadata", "kv/ref_doc_info"):
        for field, value in raw.hgetall(name).items():
            assert json.dumps(json.loads(value)) == value.decode(), (name, field)


def test_llamaindex_stores_and_ingestion_pipeline_accept_it(server):
    from llama_index.core.ingestion import DocstoreStrategy, IngestionCache, IngestionPipeline
    from llama_index.core.schema import Document, TransformComponent
    from llama_index.core.storage.docstore.keyval_docstore import KVDocumentStore
    from llama_index.core.storage.index_store.keyval_index_store import KVIndexStore
    from llama_index.core.data_structs.data_structs import IndexDict
    from llama_index.storage.docstore.redis import RedisDocumentStore

    class Upper(TransformComponent):
        def __call__(self, nodes, **kwargs):
            for node in nodes:
                node.set_content(node.get_content().upper())
            return nodes

    store = kvdex_li.RedisKVStore.from_host_and_port(server.host, server.port)
    docstore = KVDocumentStore(store, namespace="plain")
    docstore.add_documents([Document(text="x", id_="d")])
    assert docstore.get_document("d").text == "x"
    index_store = KVIndexStore(store)
    index_store.add_index_struct(IndexDict(index_id="idx"))
    assert KVIndexStore(kvdex_li.RedisKVStore(redis_uri=server.uri)).get_index_struct("idx").index_id == "idx"

    documents = [Document(text=f"hello {i}", id_=f"doc-{i}") for i in range(10)]
    pipeline = IngestionPipeline(
        transformations=[Upper()],
        docstore=RedisDocumentStore(redis_kvstore=store, namespace="pipe"),
        cache=IngestionCache(cache=kvdex_li.RedisKVStore(redis_uri=server.uri), collection="cache"),
        docstore_strategy=DocstoreStrategy.DUPLICATES_ONLY,
    )
    nodes = pipeline.run(documents=documents)
    assert sorted(n.get_content() for n in nodes) == sorted(f"HELLO {i}" for i in range(10))
    assert server.client().hlen("cache") >= 1
    # Unchanged documents are skipped the second time (the docstore has their hashes).
    assert pipeline.run(documents=documents) == []
    more = [Document(text=f"again {i}", id_=f"more-{i}") for i in range(5)]
    nodes = asyncio.run(pipeline.arun(documents=more))
    assert sorted(n.get_content() for n in nodes) == sorted(f"AGAIN {i}" for i in range(5))
    reread = RedisDocumentStore(redis_kvstore=_llama_store(server), namespace="pipe")
    assert reread.get_document_hash("more-3") == more[3].hash


@pytest.mark.parametrize("make", [kvdex.RedisKVStore, kvdex_li.RedisKVStore], ids=["kvdex", "llama_index"])
def test_gathered_agets_open_at_most_a_handful_of_connections(server, make):
    store = make(redis_uri=server.uri)
    keys = [f"k{i}" for i in range(10_000)]
    store.put_all([(k, {"k": k}) for k in keys], batch_size=1000)
    info = server.client()
    before = info.info("stats")["total_connections_received"]

    async def main():
        return await asyncio.gather(*(store.aget(k) for k in keys))

    values = asyncio.run(main())
    assert values == [{"k": k} for k in keys]
    # Twice on one loop (its inbox is reused) and on a new loop.
    assert asyncio.run(main()) == values
    opened = info.info("stats")["total_connections_received"] - before
    assert opened <= 4, f"{opened} connections for 10,000 gathered agets"


def test_a_dead_server_is_unavailable_naming_it():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = kvdex.RedisKVStore(redis_uri=f"redis://127.0.0.1:{port}?retries=1&backoff_ms=1")
    with pytest.raises(kvdex.UnavailableError, match=f"127.0.0.1:{port}"):
        store.get("k")
    async def aget():
        return await store.aget("k")

    with pytest.raises(kvdex.UnavailableError, match=f"127.0.0.1:{port}"):
        asyncio.run(aget())
