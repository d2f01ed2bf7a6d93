"""Golden persist directories made by real LlamaIndex (tools/golden/
make_llamaindex_persist.py): kvdex loads each kvstore file and writes it back byte
for byte, answers the recorded queries, and LlamaIndex loads what kvdex wrote."""

from __future__ import annotations

import json
import shutil

import pytest
from llama_index.core import StorageContext, load_index_from_storage
from llama_index.core.storage.kvstore import SimpleKVStore as LlamaSimpleKVStore

import kvdex
import kvdex.llama_index as kl

from conftest import GOLDEN_KVSTORE, GOLDEN_PERSIST

# Files whose shape is {collection: {key: object}}: a kvstore can hold them.
KVSTORE_FILES = [
    GOLDEN_PERSIST / "docstore.json",
    GOLDEN_PERSIST / "index_store.json",
    GOLDEN_PERSIST / "graph_store.json",
    GOLDEN_PERSIST / "image__vector_store.json",
    GOLDEN_KVSTORE / "kvstore.json",
]


@pytest.mark.parametrize("path", KVSTORE_FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("cls", [kvdex.SimpleKVStore, kl.SimpleKVStore])
def test_load_and_write_back_byte_identical(tmp_path, path, cls):
    store = cls.from_persist_path(str(path))
    out = tmp_path / "out" / path.name
    store.persist(str(out))
    assert out.read_bytes() == path.read_bytes()
    # and LlamaIndex reads what kvdex wrote as it reads its own file
    assert LlamaSimpleKVStore.from_persist_path(str(out)).to_dict() == \
        LlamaSimpleKVStore.from_persist_path(str(path)).to_dict()


@pytest.mark.parametrize("path", KVSTORE_FILES, ids=lambda p: p.name)
def test_contents_equal_llamaindex(path):
    assert kvdex.SimpleKVStore.from_persist_path(str(path)).to_dict() == \
        LlamaSimpleKVStore.from_persist_path(str(path)).to_dict()


def test_vector_store_file_is_not_a_kvstore():
    # default__vector_store.json maps ids to lists (embeddings): not a kvstore file.
    with pytest.raises(kvdex.CorruptionError, match="is not a JSON object"):
        kvdex.SimpleKVStore.from_persist_path(str(GOLDEN_PERSIST / "default__vector_store.json"))


def test_simple_kvstore_expected_contents():
    expected = json.loads((GOLDEN_KVSTORE / "kvstore_expected.json").read_text(encoding="utf-8"))
    store = kvdex.SimpleKVStore.from_persist_path(str(GOLDEN_KVSTORE / "kvstore.json"))
    assert list(store.to_dict()) == expected["collections_in_order"]
    assert store.to_dict() == expected["data"]
    assert store.get_all("only_read") == {}
    assert store.get("doc-b", collection="docstore/data")["big_int"] == 12345678901234567890


def recorded_queries():
    return json.loads((GOLDEN_PERSIST / "expected_query.json").read_text(encoding="utf-8"))


def run_queries(index) -> dict:
    out = {}
    for text, expected in recorded_queries()["queries"].items():
        nodes = index.as_retriever(similarity_top_k=expected["similarity_top_k"]).retrieve(text)
        out[text] = {
            "similarity_top_k": expected["similarity_top_k"],
            "node_ids": [n.node.node_id for n in nodes],
            "ref_doc_ids": [n.node.ref_doc_id for n in nodes],
            "scores": [n.score for n in nodes],
        }
    return out


def test_golden_index_loads_and_answers_recorded_queries(tmp_path, mock_settings, kvdex_installed):
    expected = recorded_queries()
    context = StorageContext.from_defaults(persist_dir=str(GOLDEN_PERSIST))
    assert isinstance(context.docstore._kvstore, kl.SimpleKVStore)
    index = load_index_from_storage(context)
    assert index.index_id == expected["index_id"]
    assert len(context.docstore.docs) == expected["num_nodes"]
    ref_infos = context.docstore.get_all_ref_doc_info()
    assert {k: len(v.node_ids) for k, v in ref_infos.items()} == expected["ref_doc_node_counts"]
    assert run_queries(index) == expected["queries"]

    # kvdex writes the directory back: the kvstore files are byte-identical.
    out = tmp_path / "rewritten"
    context.persist(persist_dir=str(out))
    for name in ("docstore.json", "index_store.json", "default__vector_store.json", "graph_store.json"):
        assert (out / name).read_bytes() == (GOLDEN_PERSIST / name).read_bytes(), name

    # LlamaIndex alone loads what kvdex wrote and answers the same.
    kl.uninstall()
    reloaded = StorageContext.from_defaults(persist_dir=str(out))
    assert type(reloaded.docstore._kvstore) is LlamaSimpleKVStore
    assert run_queries(load_index_from_storage(reloaded)) == expected["queries"]
    kl.install()


def test_golden_index_after_kvdex_edits(tmp_path, mock_settings):
    # Load the golden docstore with kvdex, delete one ref doc, persist; LlamaIndex
    # doing the same on its own store writes the same bytes.
    for name in ("docstore.json",):
        shutil.copy(GOLDEN_PERSIST / name, tmp_path / name)
    ours = kl.SimpleDocumentStore.from_persist_path(str(tmp_path / "docstore.json"))
    from llama_index.core.storage.docstore import SimpleDocumentStore

    theirs = SimpleDocumentStore.from_persist_path(str(GOLDEN_PERSIST / "docstore.json"))
    for store in (ours, theirs):
        store.delete_ref_doc("doc-06")
    ours.persist(str(tmp_path / "ours.json"))
    theirs.persist(str(tmp_path / "theirs.json"))
    assert (tmp_path / "ours.json").read_bytes() == (tmp_path / "theirs.json").read_bytes()
