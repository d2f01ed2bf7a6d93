"""kvdex.llama_index in real LlamaIndex (llama-index-core 0.14.25): docstore, index
store, VectorStoreIndex, IngestionPipeline, async_add_documents, fsspec.

Most tests run twice through the ``kvstore_cls`` fixture: with LlamaIndex's own
SimpleKVStore (the reference) and with kvdex's; where both run the same program,
the persisted bytes are compared."""

from __future__ import annotations

import asyncio
import inspect
import json
from pathlib import Path

import fsspec
import pytest
from llama_index.core import Document, StorageContext, VectorStoreIndex, load_index_from_storage
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.ingestion import DocstoreStrategy, IngestionCache, IngestionPipeline
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import NodeRelationship, TextNode
from llama_index.core.storage.docstore import SimpleDocumentStore
from llama_index.core.storage.index_store import SimpleIndexStore
from llama_index.core.storage.kvstore import SimpleKVStore as LlamaSimpleKVStore
from llama_index.core.storage.kvstore.types import (
    BaseInMemoryKVStore,
    BaseKVStore,
    MutableMappingKVStore,
)
from llama_index.core.vector_stores import SimpleVectorStore

import kvdex
import kvdex.llama_index as kl

PUBLIC_METHODS = [
    "put", "aput", "put_all", "aput_all", "get", "aget", "get_all", "aget_all",
    "delete", "adelete", "persist", "from_persist_path", "to_dict", "from_dict",
]


def test_drop_in_is_a_llamaindex_simple_kvstore():
    store = kl.SimpleKVStore()
    assert isinstance(store, LlamaSimpleKVStore)
    assert isinstance(store, MutableMappingKVStore) and isinstance(store, BaseKVStore)
    assert isinstance(store, BaseInMemoryKVStore) == isinstance(LlamaSimpleKVStore(), BaseInMemoryKVStore)
    assert not hasattr(store, "_collections_mappings")


@pytest.mark.parametrize("name", PUBLIC_METHODS)
def test_drop_in_overrides_every_method_with_the_same_signature(name):
    ours = getattr(kl.SimpleKVStore, name)
    assert getattr(ours, "__qualname__", "").startswith(("SimpleKVStore.", "_Delegating.")), name
    assert shape(ours) == shape(getattr(LlamaSimpleKVStore, name))
    assert inspect.iscoroutinefunction(ours) == inspect.iscoroutinefunction(getattr(LlamaSimpleKVStore, name))


def shape(fn):
    """Parameter names, kinds and defaults (annotations aside)."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def test_drop_in_accepts_any_batch_size_and_rejects_below_one():
    store = kl.SimpleKVStore()
    store.put_all([(str(i), {"i": i}) for i in range(5)], batch_size=2)
    assert len(store.get_all()) == 5
    with pytest.raises(ValueError):
        store.put_all([("x", {})], batch_size=0)
    with pytest.raises(NotImplementedError):  # LlamaIndex's own refuses any batching
        LlamaSimpleKVStore().put_all([("x", {})], batch_size=2)


# ---- Document store ---------------------------------------------------------------------


def make_docs():
    ref = Document(text="the reference document", id_="ref", metadata={"city": "Zürich"})
    child_a = Document(text="child a", id_="a", metadata={"n": 1})
    child_a.relationships[NodeRelationship.SOURCE] = ref.as_related_node_info()
    child_b = TextNode(text="child b 🚀", id_="b", metadata={"n": 2})
    child_b.relationships[NodeRelationship.SOURCE] = ref.as_related_node_info()
    loner = TextNode(text="no source", id_="c")
    return ref, child_a, child_b, loner


def docstore_program(kvstore) -> SimpleDocumentStore:
    docstore = SimpleDocumentStore(simple_kvstore=kvstore)
    ref, child_a, child_b, loner = make_docs()
    docstore.add_documents([ref, child_a, child_b, loner])
    assert docstore.get_document("a") == child_a
    assert docstore.get_node("b") == child_b
    assert docstore.document_exists("c") and not docstore.document_exists("zz")
    assert docstore.get_document_hash("a") == child_a.hash
    assert docstore.get_ref_doc_info("ref").node_ids == ["a", "b"]
    assert set(docstore.get_all_document_hashes().values()) >= {"a", "b", "c"}
    docstore.set_document_hash("c", "custom-hash")
    assert docstore.get_document_hash("c") == "custom-hash"
    assert set(docstore.docs) == {"ref", "a", "b", "c"}
    docstore.delete_document("c")
    assert docstore.get_document("c", raise_error=False) is None
    docstore.delete_ref_doc("ref")  # cascades to a and b
    assert set(docstore.docs) == {"ref"} or set(docstore.docs) == set()
    assert docstore.get_node("a", raise_error=False) is None
    assert docstore.get_ref_doc_info("ref") is None
    return docstore


def test_docstore_behaves_and_persists_identically(tmp_path, kvstore_cls):
    docstore = docstore_program(kvstore_cls())
    path = tmp_path / "docstore.json"
    docstore.persist(str(path))
    reference = docstore_program(LlamaSimpleKVStore())
    reference.persist(str(tmp_path / "reference.json"))
    assert path.read_bytes() == (tmp_path / "reference.json").read_bytes()
    assert docstore.to_dict() == reference.to_dict()


@pytest.mark.asyncio
@pytest.mark.parametrize("async_inline", [True, False])
async def test_async_add_documents_three_concurrent_aput_all(tmp_path, async_inline):
    kvstore = kl.SimpleKVStore()
    kvstore.kvdex_store.async_inline = async_inline
    ours = SimpleDocumentStore(simple_kvstore=kvstore)
    reference = SimpleDocumentStore()
    calls = []
    original = kvstore.aput_all

    async def spy(kv_pairs, collection="data", batch_size=1):
        calls.append(collection)
        await original(kv_pairs, collection, batch_size)

    kvstore.aput_all = spy
    parents = [Document(text=f"parent {p}", id_=f"ref{p}") for p in range(3)]
    docs = []
    for i in range(20):
        node = TextNode(text=f"node {i}", id_=f"d{i}", metadata={"i": i})
        node.relationships[NodeRelationship.SOURCE] = parents[i % 3].as_related_node_info()
        docs.append(node)
    await asyncio.gather(ours.async_add_documents(docs), reference.async_add_documents(docs))
    assert sorted(calls) == ["docstore/data", "docstore/metadata", "docstore/ref_doc_info"]
    assert await ours.aget_document("d3") == docs[3]
    assert await ours.aget_all_document_hashes() == await reference.aget_all_document_hashes()
    assert await ours.adocument_exists("d7")
    await ours.adelete_document("d7")
    await reference.adelete_document("d7")
    await ours.adelete_ref_doc("ref1")  # cascades to its nodes
    await reference.adelete_ref_doc("ref1")
    assert await ours.aget_document("d4", raise_error=False) is None
    assert await ours.aget_ref_doc_info("ref1") is None
    ours.persist(str(tmp_path / "ours.json"))
    reference.persist(str(tmp_path / "theirs.json"))
    if async_inline:
        assert (tmp_path / "ours.json").read_bytes() == (tmp_path / "theirs.json").read_bytes()
    else:
        # Truly concurrent aput_all calls create the three collections in whatever
        # order their first batches land, so only the collections' order may differ.
        ours_data = json.loads((tmp_path / "ours.json").read_text())
        theirs_data = json.loads((tmp_path / "theirs.json").read_text())
        assert sorted(ours_data) == sorted(theirs_data)
        for name, entries in theirs_data.items():
            assert list(ours_data[name].items()) == list(entries.items())


def test_index_store(kvstore_cls, tmp_path):
    from llama_index.core.data_structs.data_structs import IndexDict

    index_store = SimpleIndexStore(simple_kvstore=kvstore_cls())
    struct = IndexDict(index_id="idx")
    struct.add_node(TextNode(text="x", id_="n1"))
    index_store.add_index_struct(struct)
    assert index_store.get_index_struct("idx") == struct
    assert [s.index_id for s in index_store.index_structs()] == ["idx"]
    path = tmp_path / "index_store.json"
    index_store.persist(str(path))
    loaded = kl.SimpleIndexStore.from_persist_path(str(path))
    assert isinstance(loaded._kvstore, kl.SimpleKVStore)
    assert loaded.get_index_struct("idx") == struct
    assert LlamaSimpleKVStore.from_persist_path(str(path)).to_dict() == loaded.to_dict()
    index_store.delete_index_struct("idx")
    assert index_store.index_structs() == []


# ---- VectorStoreIndex -------------------------------------------------------------------


def corpus():
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa Zürich 🚀".split()
    docs = []
    for i in range(6):
        text = " ".join(f"{words[(i * 7 + j) % len(words)]}{j % 5}." for j in range(30 + 25 * i))
        docs.append(Document(text=text, id_=f"doc-{i}", metadata={"i": i, "city": "Zürich"}))
    return docs


def build_and_persist(persist_dir: Path, storage_context: StorageContext) -> dict:
    splitter = SentenceSplitter(chunk_size=64, chunk_overlap=8)
    index = VectorStoreIndex.from_documents(corpus(), storage_context=storage_context,
                                            transformations=[splitter])
    index.insert(Document(text="a late insert about Zürich. " * 5, id_="late"))
    index.delete_ref_doc("doc-2", delete_from_docstore=True)
    index.storage_context.persist(persist_dir=str(persist_dir))
    return query(index)


def query(index) -> dict:
    out = {}
    for text, k in (("alpha", 3), ("Zürich", 5)):
        nodes = index.as_retriever(similarity_top_k=k).retrieve(text)
        out[text] = [(n.node.node_id, n.node.ref_doc_id, n.node.get_content()) for n in nodes]
    return out


def test_vector_index_persist_load_query(tmp_path, seeded_uuid, mock_settings):
    seeded_uuid(1)
    ours_dir, ref_dir = tmp_path / "ours", tmp_path / "reference"
    ours_context = StorageContext.from_defaults(
        docstore=kl.SimpleDocumentStore(), index_store=kl.SimpleIndexStore()
    )
    ours_results = build_and_persist(ours_dir, ours_context)
    seeded_uuid(1)
    ref_results = build_and_persist(ref_dir, StorageContext.from_defaults())
    assert ours_results == ref_results
    for name in ("docstore.json", "index_store.json", "default__vector_store.json"):
        assert (ours_dir / name).read_bytes() == (ref_dir / name).read_bytes(), name

    # Load with kvdex (explicit drop-in classes) and query: the same nodes.
    context = StorageContext.from_defaults(
        docstore=kl.SimpleDocumentStore.from_persist_dir(str(ours_dir)),
        index_store=kl.SimpleIndexStore.from_persist_dir(str(ours_dir)),
        persist_dir=str(ours_dir),
    )
    assert isinstance(context.docstore._kvstore, kl.SimpleKVStore)
    assert query(load_index_from_storage(context)) == ref_results
    # LlamaIndex alone loads what kvdex wrote.
    assert query(load_index_from_storage(StorageContext.from_defaults(persist_dir=str(ours_dir)))) == ref_results


def test_install_makes_storage_context_use_kvdex(tmp_path, seeded_uuid, mock_settings, kvdex_installed):
    seeded_uuid(2)
    context = StorageContext.from_defaults()
    assert isinstance(context.docstore._kvstore, kl.SimpleKVStore)
    assert isinstance(context.index_store._kvstore, kl.SimpleKVStore)
    results = build_and_persist(tmp_path, context)
    loaded = StorageContext.from_defaults(persist_dir=str(tmp_path))
    assert isinstance(loaded.docstore._kvstore, kl.SimpleKVStore)
    assert query(load_index_from_storage(loaded)) == results
    restored = StorageContext.from_dict(loaded.to_dict())
    assert isinstance(restored.docstore._kvstore, kl.SimpleKVStore)
    assert restored.docstore.to_dict() == loaded.docstore.to_dict()


def test_uninstall_restores_llamaindex():
    kl.install()
    kl.install()
    kl.uninstall()
    assert type(SimpleDocumentStore()._kvstore) is LlamaSimpleKVStore


def test_install_reaches_the_ingestion_cache(tmp_path, kvdex_installed):
    # IngestionCache()'s default store, and so IngestionPipeline()'s cache.
    assert type(IngestionCache().cache) is kl.SimpleKVStore
    pipeline = IngestionPipeline(transformations=[SentenceSplitter(chunk_size=64, chunk_overlap=8)])
    assert type(pipeline.cache.cache) is kl.SimpleKVStore
    docs = corpus()[:2]
    first = pipeline.run(documents=docs)
    assert len(pipeline.cache.cache.get_all(pipeline.cache.collection)) == 1
    pipeline.persist(str(tmp_path / "pipeline"))

    # IngestionPipeline.load() rebuilds the cache from the file: kvdex's store again,
    # holding what was persisted, and the next run is answered from it.
    loaded = IngestionPipeline(transformations=[SentenceSplitter(chunk_size=64, chunk_overlap=8)])
    loaded.load(str(tmp_path / "pipeline"))
    assert type(loaded.cache.cache) is kl.SimpleKVStore
    assert loaded.cache.cache.to_dict() == pipeline.cache.cache.to_dict()
    again = loaded.run(documents=docs)
    assert [n.get_content() for n in again] == [n.get_content() for n in first]
    assert [n.id_ for n in again] == [n.id_ for n in first]  # from the cache: same ids

    # The same through an fsspec filesystem (IngestionPipeline.load(fs=...)).
    fs = fsspec.filesystem("memory")
    pipeline.persist("/kvdex-ingestion", fs=fs)
    from_fs = IngestionPipeline(transformations=[])
    from_fs.load("/kvdex-ingestion", fs=fs)
    assert type(from_fs.cache.cache) is kl.SimpleKVStore
    assert from_fs.cache.cache.to_dict() == pipeline.cache.cache.to_dict()
    fs.rm("/kvdex-ingestion", recursive=True)

    # A cache given LlamaIndex's own store explicitly keeps it, and still persists.
    explicit = IngestionCache(cache=LlamaSimpleKVStore())
    assert type(explicit.cache) is LlamaSimpleKVStore
    explicit.cache.put("k", {"nodes": []}, collection=explicit.collection)
    explicit.persist(str(tmp_path / "explicit.json"))
    assert json.loads((tmp_path / "explicit.json").read_text()) == {"llama_cache": {"k": {"nodes": []}}}


def test_uninstall_restores_the_ingestion_cache(tmp_path):
    kl.install()
    kl.install()
    kl.uninstall()
    assert type(IngestionCache().cache) is LlamaSimpleKVStore
    assert type(IngestionPipeline(transformations=[]).cache.cache) is LlamaSimpleKVStore
    IngestionCache().persist(str(tmp_path / "cache.json"))
    assert type(IngestionCache.from_persist_path(str(tmp_path / "cache.json")).cache) is LlamaSimpleKVStore


def test_storage_context_through_an_fsspec_filesystem(seeded_uuid, mock_settings, kvdex_installed):
    fs = fsspec.filesystem("memory")
    seeded_uuid(3)
    results = build_and_persist_fs(fs, "/kvdex-fs/ours")
    kl.uninstall()
    seeded_uuid(3)
    reference = build_and_persist_fs(fs, "/kvdex-fs/reference")
    kl.install()
    assert results == reference
    for name in ("docstore.json", "index_store.json"):
        assert fs.cat(f"/kvdex-fs/ours/{name}") == fs.cat(f"/kvdex-fs/reference/{name}")
    loaded = StorageContext.from_defaults(persist_dir="/kvdex-fs/ours", fs=fs)
    assert isinstance(loaded.docstore._kvstore, kl.SimpleKVStore)
    assert query(load_index_from_storage(loaded)) == results
    fs.rm("/kvdex-fs", recursive=True)


def build_and_persist_fs(fs, persist_dir: str) -> dict:
    index = VectorStoreIndex.from_documents(corpus()[:3], transformations=[SentenceSplitter(chunk_size=64, chunk_overlap=8)])
    index.storage_context.persist(persist_dir=persist_dir, fs=fs)
    return query(index)


# ---- IngestionPipeline ----------------------------------------------------------------


def test_pipeline_skips_duplicates(kvstore_cls):
    docstore = SimpleDocumentStore(simple_kvstore=kvstore_cls())
    pipeline = IngestionPipeline(transformations=[SentenceSplitter(chunk_size=64, chunk_overlap=8)],
                                 docstore=docstore, docstore_strategy=DocstoreStrategy.DUPLICATES_ONLY)
    docs = corpus()[:3]
    first = pipeline.run(documents=docs)
    assert len(first) > 3
    assert pipeline.run(documents=docs) == []  # all duplicates
    assert set(docstore.get_all_document_hashes().values()) == {d.id_ for d in docs}


def test_pipeline_upserts(kvstore_cls, tmp_path):
    docstore = SimpleDocumentStore(simple_kvstore=kvstore_cls())
    pipeline = IngestionPipeline(
        transformations=[SentenceSplitter(chunk_size=64, chunk_overlap=8), MockEmbedding(embed_dim=8)],
        docstore=docstore,
        vector_store=SimpleVectorStore(),
        docstore_strategy=DocstoreStrategy.UPSERTS,
        cache=IngestionCache(cache=kvstore_cls()),
    )
    docs = corpus()[:3]
    pipeline.run(documents=docs)
    changed = Document(text="completely new text for doc-1.", id_="doc-1")
    rerun = pipeline.run(documents=[docs[0], changed, docs[2]])
    assert {n.ref_doc_id for n in rerun} == {"doc-1"}
    assert docstore.get_document_hash("doc-1") == changed.hash
    pipeline.persist(str(tmp_path / "pipeline"))
    assert (tmp_path / "pipeline" / "llama_cache").exists()  # the cache kvstore persisted too
    assert (tmp_path / "pipeline" / "docstore.json").exists()


# ---- docs and get_all_ref_doc_info: one value at a time on kvdex (issue 14) ----------


def ref_doc_corpus():
    """Documents split into nodes (so the docstore has ref doc infos), a legacy ref doc
    info (doc_ids / extra_info, as LlamaIndex < 0.9 wrote it) among them."""
    splitter = SentenceSplitter(chunk_size=64, chunk_overlap=8)
    return splitter.get_nodes_from_documents(corpus())


def persisted_docstore(tmp_path) -> str:
    reference = SimpleDocumentStore()
    reference.add_documents(ref_doc_corpus())
    reference._kvstore.put("legacy-doc", {"doc_ids": ["n-1", "n-2"], "extra_info": {"a": 1}},
                           collection=reference._ref_doc_collection)
    path = str(tmp_path / "docstore.json")
    reference.persist(path)
    return path


def as_comparable(docs: dict) -> list:
    return [(key, type(node).__name__, node.to_dict()) for key, node in docs.items()]


def count_iter_items(monkeypatch, kvstore) -> list:
    calls = []
    real = kvstore.iter_items

    def spy(collection):
        calls.append(collection)
        return real(collection)

    monkeypatch.setattr(kvstore, "iter_items", spy)
    return calls


def test_kvdex_docstore_reads_docs_and_ref_doc_info_one_value_at_a_time(tmp_path, monkeypatch):
    path = persisted_docstore(tmp_path)
    theirs = SimpleDocumentStore.from_persist_path(path)
    ours = kl.SimpleDocumentStore.from_persist_path(path)
    calls = count_iter_items(monkeypatch, ours._kvstore)

    assert as_comparable(ours.docs) == as_comparable(theirs.docs)
    assert calls == [ours._node_collection]
    refs = ours.get_all_ref_doc_info()
    assert calls == [ours._node_collection, ours._ref_doc_collection]
    assert refs == theirs.get_all_ref_doc_info()
    assert list(refs) == list(theirs.get_all_ref_doc_info())
    assert refs["legacy-doc"].node_ids == ["n-1", "n-2"] and refs["legacy-doc"].metadata == {"a": 1}
    # What was read is the caller's: changing it changes neither the store nor the next read.
    refs["legacy-doc"].node_ids.append("n-3")
    next(iter(ours.docs.values())).metadata["changed"] = True
    assert ours.get_all_ref_doc_info() == theirs.get_all_ref_doc_info()
    assert as_comparable(ours.docs) == as_comparable(theirs.docs)
    # An empty docstore: empty dicts, as LlamaIndex's.
    empty = kl.SimpleDocumentStore()
    assert empty.docs == SimpleDocumentStore().docs == {}
    assert empty.get_all_ref_doc_info() == SimpleDocumentStore().get_all_ref_doc_info() == {}


def test_a_replaced_get_all_is_what_docs_reads(tmp_path, monkeypatch):
    path = persisted_docstore(tmp_path)
    ours = kl.SimpleDocumentStore.from_persist_path(path)
    expected = as_comparable(ours.docs)

    class Counting(kl.SimpleKVStore):
        reads = 0

        def get_all(self, collection="data"):
            Counting.reads += 1
            return super().get_all(collection)

    counting = kl.SimpleDocumentStore(Counting.from_persist_path(path))
    assert as_comparable(counting.docs) == expected and Counting.reads == 1
    counting.get_all_ref_doc_info()
    assert Counting.reads == 2

    patched = kl.SimpleDocumentStore.from_persist_path(path)
    seen = []
    real_get_all = patched._kvstore.get_all
    monkeypatch.setattr(patched._kvstore, "get_all", lambda collection="data": seen.append(collection)
                        or real_get_all(collection))
    assert as_comparable(patched.docs) == expected and seen == [patched._node_collection]

    # LlamaIndex's own store under kvdex's docstore class: LlamaIndex's code, unchanged.
    mixed = kl.SimpleDocumentStore(LlamaSimpleKVStore.from_persist_path(path))
    assert as_comparable(mixed.docs) == expected
    assert mixed.get_all_ref_doc_info() == ours.get_all_ref_doc_info()
    assert list(mixed.get_all_ref_doc_info()) == list(ours.get_all_ref_doc_info())


def test_install_makes_every_kv_docstore_read_kvdex_one_value_at_a_time(tmp_path, monkeypatch):
    from llama_index.core.storage.docstore.keyval_docstore import KVDocumentStore

    original_docs = KVDocumentStore.__dict__["docs"]
    original_refs = KVDocumentStore.__dict__["get_all_ref_doc_info"]
    path = persisted_docstore(tmp_path)
    theirs = SimpleDocumentStore.from_persist_path(path)
    kl.install()
    try:
        # LlamaIndex's SimpleDocumentStore class given kvdex's store.
        given = SimpleDocumentStore(kl.SimpleKVStore.from_persist_path(path))
        calls = count_iter_items(monkeypatch, given._kvstore)
        assert as_comparable(given.docs) == as_comparable(theirs.docs)
        assert given.get_all_ref_doc_info() == theirs.get_all_ref_doc_info()
        assert calls == [given._node_collection, given._ref_doc_collection]
        # Loaded while installed: kvdex's store, read the same way.
        loaded = SimpleDocumentStore.from_persist_path(path)
        assert isinstance(loaded._kvstore, kl.SimpleKVStore)
        assert as_comparable(loaded.docs) == as_comparable(theirs.docs)
        # Any other store keeps LlamaIndex's code.
        other = SimpleDocumentStore(LlamaSimpleKVStore.from_persist_path(path))
        assert as_comparable(other.docs) == as_comparable(theirs.docs)
        assert other.get_all_ref_doc_info() == theirs.get_all_ref_doc_info()
    finally:
        kl.uninstall()
    assert KVDocumentStore.__dict__["docs"] is original_docs
    assert KVDocumentStore.__dict__["get_all_ref_doc_info"] is original_refs
    after = SimpleDocumentStore(kl.SimpleKVStore.from_persist_path(path))
    calls = count_iter_items(monkeypatch, after._kvstore)
    assert as_comparable(after.docs) == as_comparable(theirs.docs) and calls == []


def test_install_keeps_what_kv_docstore_had_when_installed(tmp_path, monkeypatch):
    # Another library's replacement of docs, made before install(), is what a
    # non-kvdex store reads through while installed, and what uninstall() restores.
    from llama_index.core.storage.docstore.keyval_docstore import KVDocumentStore

    path = persisted_docstore(tmp_path)
    original_docs = KVDocumentStore.__dict__["docs"]
    calls = []

    def docs_of_another_library(self):
        calls.append(type(self._kvstore))
        return original_docs.fget(self)

    replaced = property(docs_of_another_library)
    monkeypatch.setattr(KVDocumentStore, "docs", replaced)
    kl.install()
    try:
        kl.install()
        theirs = SimpleDocumentStore(LlamaSimpleKVStore.from_persist_path(path))
        ours = SimpleDocumentStore(kl.SimpleKVStore.from_persist_path(path))
        assert as_comparable(ours.docs) == as_comparable(theirs.docs)
        assert calls == [LlamaSimpleKVStore]  # kvdex's store was read one value at a time
        mixed = kl.SimpleDocumentStore(LlamaSimpleKVStore.from_persist_path(path))
        mixed.docs
        assert calls == [LlamaSimpleKVStore, LlamaSimpleKVStore]
    finally:
        kl.uninstall()
    assert KVDocumentStore.__dict__["docs"] is replaced
