#!/usr/bin/env python3
"""Generate golden persist files with real llama-index-core (0.14.25).

Run with the reference venv (mock embedding / mock LLM only, no downloads):

    /tmp/li-venv/bin/python tools/golden/make_llamaindex_persist.py [OUT_DIR] [KV_OUT_DIR]

Defaults:
    OUT_DIR    = python/tests/data/llamaindex_persist
    KV_OUT_DIR = python/tests/data/simple_kvstore

Outputs:
  * OUT_DIR: whatever ``StorageContext.persist`` writes for a VectorStoreIndex
    (docstore.json, index_store.json, default__vector_store.json,
    image__vector_store.json, graph_store.json), plus ``expected_query.json``
    (retriever results after reloading with ``load_index_from_storage``).
  * KV_OUT_DIR/kvstore.json: a ``SimpleKVStore`` persisted directly, plus
    ``kvstore_expected.json`` describing its content.

Everything is deterministic: ``uuid.uuid4`` is replaced by a seeded generator
*before* llama_index is imported (covers node ids from the SentenceSplitter's
default id_func and the IndexDict ``index_id``), and document ids are fixed.
Running the script twice yields byte-identical files.
"""

from __future__ import annotations

import json
import os
import random
import sys
import uuid
from pathlib import Path

# ---------------------------------------------------------------------------
# Determinism: seeded uuid4, installed before llama_index is imported.
# ---------------------------------------------------------------------------
_UUID_RNG = random.Random(20240611)


def _seeded_uuid4() -> uuid.UUID:
    return uuid.UUID(int=_UUID_RNG.getrandbits(128), version=4)


uuid.uuid4 = _seeded_uuid4  # type: ignore[assignment]
os.environ.setdefault("PYTHONHASHSEED", "0")

from llama_index.core import (  # noqa: E402
    Document,
    Settings,
    StorageContext,
    VectorStoreIndex,
    load_index_from_storage,
)
from llama_index.core.embeddings import MockEmbedding  # noqa: E402
from llama_index.core.llms import MockLLM  # noqa: E402
from llama_index.core.node_parser import SentenceSplitter  # noqa: E402
from llama_index.core.storage.kvstore import SimpleKVStore  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "python" / "tests" / "data" / "llamaindex_persist"
DEFAULT_KV_OUT = REPO / "python" / "tests" / "data" / "simple_kvstore"

WORDS = (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi "
    "omicron pi rho sigma tau upsilon phi chi psi omega store key value "
    "collection persist index node document vector graph"
).split()

NON_ASCII = [
    "Zürich",
    "Ελληνικά",
    "日本語のテキスト",
    "naïve café — “quotes”",
    "emoji 🚀✨",
    "Ünïcödé ß ø å",
]


def make_text(rng: random.Random, n_sentences: int, extra: str = "") -> str:
    sentences = []
    for _ in range(n_sentences):
        n = rng.randint(6, 14)
        words = [rng.choice(WORDS) for _ in range(n)]
        words[0] = words[0].capitalize()
        sentences.append(" ".join(words) + ".")
    if extra:
        sentences.insert(1 if sentences else 0, extra)
    return " ".join(sentences)


def make_documents() -> list[Document]:
    rng = random.Random(1234)
    docs = []
    for i in range(12):
        # every third document is long -> several nodes with chunk_size=128
        n_sentences = 40 if i % 3 == 0 else rng.randint(2, 5)
        extra = NON_ASCII[i % len(NON_ASCII)] if i % 2 == 0 else ""
        text = make_text(rng, n_sentences, extra)
        metadata = {
            "title": f"Document {i:02d}",
            "index": i,
            "score": round(0.1 * i, 3),
            "is_long": i % 3 == 0,
        }
        if i % 2 == 0:
            metadata["city"] = NON_ASCII[i % len(NON_ASCII)]
        if i == 5:
            metadata["note"] = None
        docs.append(
            Document(
                id_=f"doc-{i:02d}",
                text=text,
                metadata=metadata,
                excluded_embed_metadata_keys=["score"] if i == 4 else [],
            )
        )
    return docs


def build_index(out_dir: Path) -> dict:
    Settings.embed_model = MockEmbedding(embed_dim=8)
    Settings.llm = MockLLM()
    Settings.chunk_size = 128
    Settings.chunk_overlap = 16
    splitter = SentenceSplitter(chunk_size=128, chunk_overlap=16)
    Settings.node_parser = splitter

    docs = make_documents()
    index = VectorStoreIndex.from_documents(docs, transformations=[splitter])

    # exercise incremental insert + ref-doc deletion (kvstore put/delete paths)
    rng = random.Random(99)
    late = Document(
        id_="doc-late",
        text=make_text(rng, 30, "late insert — ünïcode"),
        metadata={"title": "Late document", "lang": "de-CH", "city": "Zürich"},
    )
    index.insert(late)
    index.delete_ref_doc("doc-03", delete_from_docstore=True)

    out_dir.mkdir(parents=True, exist_ok=True)
    index.storage_context.persist(persist_dir=str(out_dir))

    ref_infos = index.storage_context.docstore.get_all_ref_doc_info() or {}
    return {
        "index_id": index.index_id,
        "num_nodes": len(index.storage_context.docstore.docs),
        "ref_doc_node_counts": {k: len(v.node_ids) for k, v in ref_infos.items()},
    }


def verify_and_query(out_dir: Path, build_info: dict) -> dict:
    storage_context = StorageContext.from_defaults(persist_dir=str(out_dir))
    index = load_index_from_storage(storage_context)
    assert index.index_id == build_info["index_id"]
    results = {}
    for query, k in (("alpha", 3), ("Zürich", 5)):
        retriever = index.as_retriever(similarity_top_k=k)
        nodes = retriever.retrieve(query)
        assert nodes, f"no nodes returned for {query!r}"
        results[query] = {
            "similarity_top_k": k,
            "node_ids": [n.node.node_id for n in nodes],
            "ref_doc_ids": [n.node.ref_doc_id for n in nodes],
            "scores": [n.score for n in nodes],
        }
    return {
        "llama_index_core_version": __import__("llama_index.core").core.__version__,
        "embed_model": "MockEmbedding(embed_dim=8)  # constant vector [0.5]*8",
        "note": (
            "MockEmbedding is constant, so all similarities tie; "
            "SimpleVectorStore breaks ties via heapq on (similarity, node_id), "
            "so the result is the top-k node ids in heap order."
        ),
        **build_info,
        "queries": results,
    }


def build_simple_kvstore(kv_dir: Path) -> dict:
    kv = SimpleKVStore()
    kv.put("doc-a", {"text": "hello", "n": 1}, collection="docstore/data")
    kv.put(
        "doc-b",
        {
            "text": "Grüße aus Zürich — 日本語 🚀",
            "nested": {"list": [1, 2.5, None, True, False, "x"], "empty": {}},
            "float_small": 1e-07,
            "float_tenth": 0.1,
            "big_int": 12345678901234567890,
            "neg": -3,
            "escapes": 'quote " backslash \\ newline \n tab \t ctrl \x01',
        },
        collection="docstore/data",
    )
    kv.put("to-delete", {"gone": True}, collection="docstore/data")
    kv.delete("to-delete", collection="docstore/data")
    kv.put("doc-a", {"doc_hash": "aaaa", "ref_doc_id": "ref-1"}, collection="docstore/metadata")
    kv.put("doc-b", {"doc_hash": "bbbb", "ref_doc_id": "ref-1"}, collection="docstore/metadata")
    kv.put(
        "ref-1",
        {"node_ids": ["doc-a", "doc-b"], "metadata": {"author": "Ōsaka"}},
        collection="docstore/ref_doc_info",
    )
    kv.put("idx-1", {"__type__": "vector_store", "__data__": "{\"index_id\": \"idx-1\"}"},
           collection="index_store/data")
    kv.put("k", {"v": "default collection"})  # DEFAULT_COLLECTION == "data"
    kv.put("ключ", {"значение": "unicode key"}, collection="unicode/коллекция")
    # a get() on an unknown collection creates it (empty) as a side effect
    assert kv.get("missing", collection="only_read") is None

    kv_dir.mkdir(parents=True, exist_ok=True)
    path = kv_dir / "kvstore.json"
    kv.persist(str(path))

    reloaded = SimpleKVStore.from_persist_path(str(path))
    assert reloaded.to_dict() == kv.to_dict()
    return {
        "collections_in_order": list(kv.to_dict().keys()),
        "only_read_is_empty": kv.to_dict()["only_read"] == {},
        "data": kv.to_dict(),
    }


def write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n",
                    encoding="utf-8")


def main(argv: list[str]) -> int:
    out_dir = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    kv_dir = Path(argv[2]) if len(argv) > 2 else DEFAULT_KV_OUT

    build_info = build_index(out_dir)
    expected = verify_and_query(out_dir, build_info)
    write_json(out_dir / "expected_query.json", expected)

    kv_expected = build_simple_kvstore(kv_dir)
    write_json(kv_dir / "kvstore_expected.json", kv_expected)

    for d in (out_dir, kv_dir):
        for p in sorted(d.iterdir()):
            print(f"{p.stat().st_size:>8}  {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
