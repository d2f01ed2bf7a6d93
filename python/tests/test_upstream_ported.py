"""LlamaIndex's own kvstore, docstore, index store and storage context unit tests
(run-llama/llama_index, llama-index-core/tests/storage/), rewritten against the
``simple_kvstore`` / ``kvstore_cls`` fixtures so each runs on LlamaIndex's
SimpleKVStore and on kvdex's drop-in. Where upstream builds stores itself
(``SimpleDocumentStore()``, ``StorageContext.from_defaults()``), the kvdex run
installs kvdex into LlamaIndex first (kvdex.llama_index.install)."""

from __future__ import annotations

from pathlib import Path

import pytest
from llama_index.core.data_structs.data_structs import IndexDict, IndexGraph
from llama_index.core.schema import Document, NodeRelationship, TextNode
from llama_index.core.storage.docstore import SimpleDocumentStore
from llama_index.core.storage.index_store.simple_index_store import SimpleIndexStore
from llama_index.core.storage.kvstore.simple_kvstore import SimpleKVStore as LlamaSimpleKVStore
from llama_index.core.storage.kvstore.types import MutableMappingKVStore
from llama_index.core.storage.storage_context import StorageContext

import kvdex.llama_index as kl


@pytest.fixture()
def builds_own(kvstore_cls):
    """Where LlamaIndex constructs the kvstore, make it construct ``kvstore_cls``."""
    if kvstore_cls is LlamaSimpleKVStore:
        yield kvstore_cls
    else:
        kl.install()
        yield kvstore_cls
        kl.uninstall()


# ---- kvstore/test_simple_kvstore.py ------------------------------------------------------


@pytest.fixture()
def kvstore_with_data(simple_kvstore):
    simple_kvstore.put("test_key", {"test_obj_key": "test_obj_val"})
    return simple_kvstore


def test_kvstore_basic(simple_kvstore):
    blob = {"test_obj_key": "test_obj_val"}
    simple_kvstore.put("test_key", blob)
    assert simple_kvstore.get("test_key") == blob
    assert simple_kvstore.get("test_key", collection="non_existent") is None


def test_kvstore_persist(tmp_path: Path, kvstore_with_data, kvstore_cls):
    path = str(tmp_path / "kvstore.json")
    kvstore_with_data.persist(path)
    loaded = kvstore_cls.from_persist_path(path)
    assert type(loaded) is kvstore_cls
    assert len(loaded.get_all()) == 1


def test_kvstore_dict(kvstore_with_data, kvstore_cls):
    loaded = kvstore_cls.from_dict(kvstore_with_data.to_dict())
    assert type(loaded) is kvstore_cls
    assert len(loaded.get_all()) == 1


# ---- kvstore/test_mutable_mapping_kvstore.py ---------------------------------------------


def test_simple_kvstore_is_a_mutable_mapping_store(simple_kvstore):
    assert isinstance(simple_kvstore, MutableMappingKVStore)
    simple_kvstore.put(key="foo", val={"foo": "bar"})
    assert simple_kvstore.get_all() == {"foo": {"foo": "bar"}}


def test_sync_methods(simple_kvstore):
    simple_kvstore.put(key="foo", val={"foo": "bar"})
    assert simple_kvstore.get("foo") == {"foo": "bar"}
    assert simple_kvstore.get("bar") is None
    simple_kvstore.put(key="bar", val={"bar": "foo"})
    assert simple_kvstore.get_all() == {"foo": {"foo": "bar"}, "bar": {"bar": "foo"}}
    simple_kvstore.delete(key="bar")
    assert simple_kvstore.get_all() == {"foo": {"foo": "bar"}}


@pytest.mark.asyncio
async def test_async_methods(simple_kvstore):
    await simple_kvstore.aput(key="foo", val={"foo": "bar"})
    assert await simple_kvstore.aget("foo") == {"foo": "bar"}
    assert await simple_kvstore.aget("bar") is None
    await simple_kvstore.aput(key="bar", val={"bar": "foo"})
    assert await simple_kvstore.aget_all() == {"foo": {"foo": "bar"}, "bar": {"bar": "foo"}}
    await simple_kvstore.adelete(key="bar")
    assert await simple_kvstore.aget_all() == {"foo": {"foo": "bar"}}


# ---- docstore/test_simple_docstore.py ----------------------------------------------------


def two_docs():
    return (
        Document(text="hello world", id_="d1", metadata={"foo": "bar"}),
        TextNode(text="my node", id_="d2", metadata={"node": "info"}),
    )


def ref_doc_family():
    ref_doc = Document(text="hello world", id_="d1", metadata={"foo": "bar"})
    doc = Document(text="hello world", id_="d2", metadata={"foo": "bar"})
    doc.relationships[NodeRelationship.SOURCE] = ref_doc.as_related_node_info()
    node = TextNode(text="my node", id_="d3", metadata={"node": "info"})
    node.relationships[NodeRelationship.SOURCE] = ref_doc.as_related_node_info()
    return ref_doc, doc, node


def assert_gone(docstore, *ids):
    for doc_id in ids:
        for collection in (docstore._node_collection, docstore._metadata_collection,
                           docstore._ref_doc_collection):
            assert docstore._kvstore.get(doc_id, collection) is None, (doc_id, collection)


def test_docstore(simple_kvstore):
    doc, node = two_docs()
    docstore = SimpleDocumentStore(simple_kvstore=simple_kvstore)
    docstore.add_documents([doc, node])
    assert docstore.get_document("d1") == doc
    assert docstore.get_document("d2") == node


def test_docstore_persist(tmp_path: Path, builds_own):
    path = str(tmp_path / "test_file.txt")
    doc, node = two_docs()
    docstore = SimpleDocumentStore()
    assert type(docstore._kvstore) is builds_own
    docstore.add_documents([doc, node])
    docstore.persist(path)
    loaded = SimpleDocumentStore.from_persist_path(path)
    assert type(loaded._kvstore) is builds_own
    assert loaded.get_document("d1") == doc
    assert loaded.get_document("d2") == node


def test_docstore_dict(builds_own):
    doc, node = two_docs()
    docstore = SimpleDocumentStore()
    docstore.add_documents([doc, node])
    loaded = SimpleDocumentStore.from_dict(docstore.to_dict())
    assert type(loaded._kvstore) is builds_own
    assert loaded.get_document("d1") == doc
    assert loaded.get_document("d2") == node


def test_docstore_delete_document(simple_kvstore):
    doc, node = two_docs()
    docstore = SimpleDocumentStore(simple_kvstore=simple_kvstore)
    docstore.add_documents([doc, node])
    docstore.delete_document("d1")
    assert_gone(docstore, "d1")
    assert docstore._kvstore.get("d2", docstore._node_collection) is not None
    assert docstore._kvstore.get("d2", docstore._metadata_collection) is not None


def test_docstore_delete_ref_doc(simple_kvstore):
    docstore = SimpleDocumentStore(simple_kvstore=simple_kvstore)
    docstore.add_documents(list(ref_doc_family()))
    docstore.delete_ref_doc("d1")
    assert_gone(docstore, "d1", "d2", "d3")


def test_docstore_delete_ref_doc_not_in_docstore(simple_kvstore):
    _, doc, node = ref_doc_family()
    docstore = SimpleDocumentStore(simple_kvstore=simple_kvstore)
    docstore.add_documents([doc, node])
    assert docstore._kvstore.get("d1", docstore._ref_doc_collection) is not None
    docstore.delete_ref_doc("d1")
    assert_gone(docstore, "d1", "d2", "d3")


def test_docstore_delete_all_ref_doc_nodes(simple_kvstore):
    docstore = SimpleDocumentStore(simple_kvstore=simple_kvstore)
    docstore.add_documents(list(ref_doc_family()))
    assert docstore._kvstore.get("d1", docstore._ref_doc_collection)["node_ids"] == ["d2", "d3"]
    docstore.delete_document("d2")
    for collection in (docstore._node_collection, docstore._metadata_collection,
                       docstore._ref_doc_collection):
        assert docstore._kvstore.get("d1", collection) is not None
    assert docstore._kvstore.get("d1", docstore._ref_doc_collection)["node_ids"] == ["d3"]
    docstore.delete_document("d3")
    assert_gone(docstore, "d1")


def test_get_all_document_ids_keeps_docs_sharing_a_hash(simple_kvstore):
    docstore = SimpleDocumentStore(simple_kvstore=simple_kvstore)
    docstore.add_documents([Document(text="duplicate content", id_="d1"),
                            Document(text="duplicate content", id_="d2")])
    assert len(docstore.get_all_document_hashes()) == 1
    # (upstream also checks get_all_document_ids(), which 0.14.25 does not have)
    assert set(docstore.docs) == {"d1", "d2"}


@pytest.mark.asyncio
async def test_aget_all_document_ids_keeps_docs_sharing_a_hash(simple_kvstore):
    docstore = SimpleDocumentStore(simple_kvstore=simple_kvstore)
    await docstore.async_add_documents([Document(text="duplicate content", id_="d1"),
                                        Document(text="duplicate content", id_="d2")])
    assert len(await docstore.aget_all_document_hashes()) == 1
    assert set(docstore.docs) == {"d1", "d2"}


# ---- index_store/test_simple_index_store.py --------------------------------------------


def test_simple_index_store_dict(builds_own):
    index_struct = IndexGraph()
    index_store = SimpleIndexStore()
    assert type(index_store._kvstore) is builds_own
    index_store.add_index_struct(index_struct)
    loaded = SimpleIndexStore.from_dict(index_store.to_dict())
    assert type(loaded._kvstore) is builds_own
    assert loaded.get_index_struct(index_struct.index_id) == index_struct


# ---- test_storage_context.py -----------------------------------------------------------


def test_storage_context_dict(builds_own):
    storage_context = StorageContext.from_defaults()
    assert type(storage_context.docstore._kvstore) is builds_own
    node = TextNode(text="test", embedding=[0.0, 0.0, 0.0])
    index_struct = IndexDict()
    storage_context.vector_store.add([node])
    storage_context.docstore.add_documents([node])
    storage_context.index_store.add_index_struct(index_struct)
    retrieved_node = storage_context.docstore.get_document(node.node_id)
    loaded = StorageContext.from_dict(storage_context.to_dict())
    assert type(loaded.docstore._kvstore) is builds_own
    assert loaded.docstore.get_node(node.node_id) == retrieved_node
    assert loaded.index_store.get_index_struct(index_struct.index_id) == index_struct
