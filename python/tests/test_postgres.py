"""kvdex.PostgresKVStore against a real server: LlamaIndex's constructor and methods,
asyncio, cross-reading with LlamaIndex's own PostgresKVStore both ways (json and
jsonb), and LlamaIndex's docstore, index store and IngestionPipeline on it."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import pickle

import pytest

import kvdex
from pg_server import postgres_server  # noqa: F401 - the session fixture

_names = itertools.count()


def fresh_table() -> str:
    return f"py_{os.getpid()}_{next(_names)}"


@pytest.fixture()
def store(postgres_server):  # noqa: F811
    s = kvdex.PostgresKVStore(table_name=fresh_table(),
                              connection_string=postgres_server.uri("psycopg2"))
    yield s
    s.close()


def test_llamaindex_constructor_arguments_and_table(postgres_server):  # noqa: F811
    name = "Mixed" + fresh_table()
    s = kvdex.PostgresKVStore(
        table_name=name,
        connection_string=postgres_server.uri("psycopg2"),
        async_connection_string=postgres_server.uri("asyncpg"),
        schema_name="Kv_Schema",
        perform_setup=True,
        debug=False,
        use_jsonb=True,
    )
    assert s.table_name == name.lower() and s.schema_name == "kv_schema" and s.use_jsonb
    s.put("k", {"v": 1})
    assert postgres_server.psql(
        f"SELECT data_type FROM information_schema.columns WHERE table_schema = 'kv_schema' "
        f"AND table_name = 'data_{name.lower()}' AND column_name = 'value'") == "jsonb"
    p = kvdex.PostgresKVStore.from_params(host="127.0.0.1", port=str(postgres_server.port),
                                          database="postgres", user="postgres", password=None,
                                          table_name=name, schema_name="kv_schema",
                                          use_jsonb=True)
    assert p.get("k") == {"v": 1}
    u = kvdex.PostgresKVStore.from_uri(postgres_server.uri(), table_name=name,
                                       schema_name="KV_SCHEMA", perform_setup=False)
    assert u.get("k") == {"v": 1}
    c = kvdex.PostgresKVStore(name, postgres_server.conninfo(), schema_name="kv_schema")
    assert c.get_all() == {"k": {"v": 1}}
    for x in (s, p, u, c):
        x.close()
    with pytest.raises(ValueError):
        kvdex.PostgresKVStore("t")
    with pytest.raises(kvdex.NotFoundError):
        kvdex.PostgresKVStore.from_uri(postgres_server.uri(), table_name=fresh_table(),
                                       perform_setup=False)


def test_methods_and_batches(store):
    store.put("a", {"x": 1})
    store.put_all([(f"k{i}", {"i": i}) for i in range(25)], batch_size=7)
    store.put_all([("d", {"v": 1}), ("d", {"v": 2})], collection="dups")
    assert store.get("d", "dups") == {"v": 2}
    assert store.get("k24") == {"i": 24}
    assert list(store.get_all())[:3] == ["a", "k0", "k1"]
    assert store.delete("a") is True
    assert store.delete("a") is False
    assert store.get("a") is None
    assert set(store.collections()) == {"data", "dups"}
    with pytest.raises(kvdex.InvalidArgumentError):
        store.put("nan", {"x": float("nan")})
    with pytest.raises(ValueError):
        store.put("bad", ["not", "a", "dict"])


def test_asyncio_through_the_event_loops(store):
    async def main():
        await store.aput_all([(f"k{i}", {"i": i}) for i in range(300)], batch_size=11)
        values = await asyncio.gather(*(store.aget(f"k{i}") for i in range(300)))
        assert values == [{"i": i} for i in range(300)]
        assert await store.aget("missing") is None
        assert len(await store.aget_all()) == 300
        assert await store.adelete("k0") is True
        assert await store.adelete("k0") is False
        await store.aput("z", {"z": True})
        assert await store.aget("z") == {"z": True}

    asyncio.run(main())


def test_pickles_by_connection(store):
    store.put("k", {"v": 1})
    again = pickle.loads(pickle.dumps(store))
    assert again.get("k") == {"v": 1}
    again.close()


def _llamaindex_store(server, table, use_jsonb):
    from llama_index.storage.kvstore.postgres import PostgresKVStore as LIPostgresKVStore

    return LIPostgresKVStore(table_name=table, connection_string=server.uri("psycopg2"),
                             async_connection_string=server.uri("asyncpg"),
                             use_jsonb=use_jsonb)


def _documents(n=20):
    from llama_index.core import Document

    return [Document(text=f"text {i} é 日本 " * 5, id_=f"doc-{i}",
                     metadata={"n": i, "f": i / 3, "tags": ["a", "b"], "none": None})
            for i in range(n)]


def _nodes(n=20):
    """Chunks of documents: they fill docstore/ref_doc_info too."""
    from llama_index.core.node_parser import SentenceSplitter

    return SentenceSplitter(chunk_size=96, chunk_overlap=0).get_nodes_from_documents(_documents(n))


@pytest.mark.parametrize("use_jsonb", [False, True])
def test_cross_reading_with_llamaindex_both_ways(postgres_server, use_jsonb):  # noqa: F811
    from llama_index.core.storage.docstore.keyval_docstore import KVDocumentStore

    # LlamaIndex writes a whole document store; kvdex reads it value for value.
    table = fresh_table()
    theirs = _llamaindex_store(postgres_server, table, use_jsonb)
    KVDocumentStore(theirs).add_documents(_nodes())
    ours = kvdex.PostgresKVStore(table, postgres_server.uri(), use_jsonb=use_jsonb)
    collections = ["docstore/data", "docstore/metadata", "docstore/ref_doc_info"]
    assert set(ours.collections()) >= set(collections)
    for c in collections:
        expected = theirs.get_all(c)
        assert expected
        assert ours.get_all(c) == expected
        # Insertion order: by id (LlamaIndex's get_all has no ORDER BY).
        by_id = postgres_server.psql(
            f"SELECT key FROM public.data_{table} WHERE namespace = '{c}' ORDER BY id")
        assert list(ours.get_all(c)) == by_id.split("\n")
        if not use_jsonb:  # json columns: the very text, key order included
            stored = {k: json.dumps(v) for k, v in ours.get_all(c).items()}
            assert stored == {k: json.dumps(v) for k, v in expected.items()}
        for key, value in expected.items():
            assert ours.get(key, c) == value
        assert list(ours.iter_items(c)) == list(ours.get_all(c).items())
    # After install(), a KVDocumentStore reads kvdex's store one value at a time.
    from kvdex import llama_index as kl

    kl.install()
    try:
        streamed = KVDocumentStore(kl.PostgresKVStore(table_name=table,
                                                      connection_string=postgres_server.uri(),
                                                      use_jsonb=use_jsonb))
        calls = []
        real_iter_items = streamed._kvstore.iter_items
        streamed._kvstore.iter_items = lambda c: calls.append(c) or real_iter_items(c)
        reference = KVDocumentStore(theirs)
        assert ({k: n.to_dict() for k, n in streamed.docs.items()}
                == {k: n.to_dict() for k, n in reference.docs.items()})
        refs = streamed.get_all_ref_doc_info()
        assert refs and refs == reference.get_all_ref_doc_info()
        assert calls == ["docstore/data", "docstore/ref_doc_info"]
        streamed._kvstore.kvdex_store.close()
    finally:
        kl.uninstall()
    # kvdex writes one; LlamaIndex reads it value for value.
    table2 = fresh_table()
    ours2 = kvdex.PostgresKVStore(table2, postgres_server.uri(), use_jsonb=use_jsonb)
    KVDocumentStore(ours2).add_documents(_nodes())
    theirs2 = _llamaindex_store(postgres_server, table2, use_jsonb)
    for c in collections:
        assert theirs2.get_all(c) == ours2.get_all(c)
        for key, value in ours2.get_all(c).items():
            assert theirs2.get(key, c) == value
    ours.close()
    ours2.close()


def test_llamaindex_docstore_index_store_and_pipeline(postgres_server):  # noqa: F811
    from llama_index.core.data_structs import IndexDict
    from llama_index.core.ingestion import DocstoreStrategy, IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.storage.docstore.keyval_docstore import KVDocumentStore
    from llama_index.core.storage.index_store.keyval_index_store import KVIndexStore
    from llama_index.storage.docstore.postgres import PostgresDocumentStore
    from llama_index.storage.index_store.postgres import PostgresIndexStore

    from kvdex.llama_index import PostgresKVStore

    kv = PostgresKVStore(table_name=fresh_table(), connection_string=postgres_server.uri())
    docstore = PostgresDocumentStore(postgres_kvstore=kv)
    docstore.add_documents(_documents(3))
    assert docstore.get_document("doc-1").text.startswith("text 1")
    assert KVDocumentStore(kv).get_document("doc-2").metadata["n"] == 2

    index_store = PostgresIndexStore(postgres_kvstore=kv)
    struct = IndexDict()
    index_store.add_index_struct(struct)
    assert index_store.get_index_struct(struct.index_id).index_id == struct.index_id
    assert KVIndexStore(kv).get_index_struct(struct.index_id) is not None

    pipe_kv = PostgresKVStore.from_uri(postgres_server.uri(), table_name=fresh_table())
    pipeline = IngestionPipeline(transformations=[SentenceSplitter(chunk_size=96, chunk_overlap=0)],
                                 docstore=PostgresDocumentStore(postgres_kvstore=pipe_kv),
                                 docstore_strategy=DocstoreStrategy.DUPLICATES_ONLY)
    nodes = pipeline.run(documents=_documents(4))
    assert nodes and len(pipeline.docstore.docs) == 4
    assert pipeline.run(documents=_documents(4)) == []  # deduplicated by the docstore

    async_kv = PostgresKVStore.from_params(host="127.0.0.1", port=str(postgres_server.port),
                                           database="postgres", user="postgres",
                                           table_name=fresh_table())
    pipeline2 = IngestionPipeline(transformations=[SentenceSplitter(chunk_size=96, chunk_overlap=0)],
                                  docstore=PostgresDocumentStore(postgres_kvstore=async_kv),
                                  docstore_strategy=DocstoreStrategy.DUPLICATES_ONLY)
    nodes2 = asyncio.run(pipeline2.arun(documents=_documents(5)))
    assert nodes2 and len(pipeline2.docstore.docs) == 5
    assert asyncio.run(pipeline2.arun(documents=_documents(5))) == []
