"""kvdex.LmdbKVStore (when the C++ library has the LMDB backend): the same API,
real asynchronous calls, persist as a no-op, pickling by path, processes sharing
one store, and use under LlamaIndex through kvdex.llama_index.KVStore."""

from __future__ import annotations

import asyncio
import multiprocessing
import pickle
import time

import pytest

import kvdex

pytestmark = pytest.mark.skipif(not kvdex.HAVE_LMDB, reason="kvdex built without LMDB")


@pytest.fixture()
def store(tmp_path):
    return kvdex.LmdbKVStore(str(tmp_path / "lmdb"))


def test_api(store):
    assert not store.async_inline
    store.put("b", {"v": 1})
    store.put_all([(f"k{i}", {"i": i}) for i in range(10)], collection="c", batch_size=4)
    assert store.get("b") == {"v": 1}
    assert store.get("missing") is None
    assert store.get("b", collection="unknown") is None
    assert len(store.get_all("c")) == 10
    assert store.delete("b") is True and store.delete("b") is False
    assert store.collections() == ["data", "c"]
    assert store.to_dict()["c"]["k3"] == {"i": 3}
    with pytest.raises(kvdex.InvalidArgumentError):
        store.put_all([("x", {})], batch_size=0)


def test_persist_is_a_no_op(store, tmp_path):
    store.put("k", {"v": 1})
    start = time.monotonic()
    assert store.persist(str(tmp_path / "ignored.json")) is None
    assert time.monotonic() - start < 0.05
    assert not (tmp_path / "ignored.json").exists()
    again = kvdex.LmdbKVStore.from_persist_path(store.path)
    assert again.get("k") == {"v": 1}


def test_read_only_and_missing(tmp_path):
    with pytest.raises(kvdex.NotFoundError):
        kvdex.LmdbKVStore(str(tmp_path / "nope"), create_if_missing=False)
    kvdex.LmdbKVStore(str(tmp_path / "ro")).put("k", {"v": 1})
    ro = kvdex.LmdbKVStore(str(tmp_path / "ro"), read_only=True)
    assert ro.get("k") == {"v": 1}
    with pytest.raises(kvdex.NotSupportedError):
        ro.put("k", {"v": 2})
    # The store is open read-only in this process: a state to change, not a bad argument.
    with pytest.raises(kvdex.FailedPreconditionError, match="read-only"):
        kvdex.LmdbKVStore(str(tmp_path / "ro"))


def test_any_number_of_collections(tmp_path):
    # Format 4: one LMDB database for every collection; max_collections is ignored.
    store = kvdex.LmdbKVStore(str(tmp_path / "many"), max_collections=1)
    for i in range(2000):
        store.put("k", {"v": i}, collection=f"tenant-{i}")
    assert len(store.collections()) == 2000
    assert store.get("k", collection="tenant-1999") == {"v": 1999}
    store.verify()


def test_options_out_of_range_are_invalid_argument(tmp_path):
    for options in ({"max_readers": 0}, {"map_size": 0}, {"map_size": 1 << 60}):
        with pytest.raises(kvdex.InvalidArgumentError):
            kvdex.LmdbKVStore(str(tmp_path / "s"), **options)


def _filled(path, keys=3000):
    store = kvdex.LmdbKVStore(str(path))
    store.put_all([(f"k{i:05d}", {"i": i, "pad": "x" * 200}) for i in range(keys)], collection="c")
    del store


def test_truncated_data_file_is_corruption(tmp_path):
    import os

    path = tmp_path / "kv"
    _filled(path)
    os.truncate(path / "data.mdb", 300000)
    with pytest.raises(kvdex.CorruptionError, match="data.mdb"):
        kvdex.LmdbKVStore(str(path), read_only=True)


def test_verify_reports_a_damaged_page_and_the_interpreter_survives(tmp_path):
    path = tmp_path / "kv"
    _filled(path)
    with open(path / "data.mdb", "r+b") as f:
        f.seek(100 * 4096)
        f.write(bytes(4096))
    store = kvdex.LmdbKVStore(str(path), read_only=True)
    with pytest.raises(kvdex.CorruptionError, match="damaged"):
        store.verify()
    assert store.collections() == ["c"]


@pytest.mark.asyncio
async def test_async_is_real_and_does_not_block(store):
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    task = asyncio.create_task(ticker())
    pairs = [(f"k{i}", {"i": i, "text": "x" * 200}) for i in range(20000)]
    await store.aput_all(pairs, collection="big", batch_size=1000)
    task.cancel()
    assert ticks > 0  # the loop ran while LMDB committed on an executor thread
    assert len(await store.aget_all("big")) == 20000
    await asyncio.gather(*(store.aput(f"p{i}", {"i": i}) for i in range(50)))
    assert await asyncio.gather(*(store.aget(f"p{i}") for i in range(50))) == [{"i": i} for i in range(50)]
    assert await store.adelete("p0") is True
    with pytest.raises(kvdex.InvalidArgumentError):
        await store.aput("bad", [1])


def test_pickle_reopens_the_same_directory(store):
    store.put("k", {"v": 1})
    twin = pickle.loads(pickle.dumps(store))
    assert twin.path == store.path and twin.get("k") == {"v": 1}
    twin.put("from-twin", {"v": 2})
    assert store.get("from-twin") == {"v": 2}  # one store, two handles


def write_in_worker(store, i):
    store.put(f"worker-{i}", {"i": i})
    return store.get("parent")


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_processes_share_the_store(store, method):
    store.put("parent", {"from": "parent"})
    with multiprocessing.get_context(method).Pool(2) as pool:
        seen = pool.starmap(write_in_worker, [(store, i) for i in range(4)])
    assert seen == [{"from": "parent"}] * 4
    assert {k for k in store.get_all() if k.startswith("worker-")} == {f"worker-{i}" for i in range(4)}


def test_open_by_uri(tmp_path):
    store = kvdex.open(f"lmdb:{tmp_path / 'by-uri'}")
    assert isinstance(store, kvdex.KVStore) and not store.in_memory and not store.async_inline
    store.put("k", {"v": 1})
    assert kvdex.open(str(tmp_path / "by-uri")).get("k") == {"v": 1}  # bare path is lmdb:


def test_under_llamaindex(tmp_path):
    from llama_index.core.schema import Document
    from llama_index.core.storage.docstore import SimpleDocumentStore

    import kvdex.llama_index as kl

    uri = f"lmdb:{tmp_path / 'docstore'}"
    docstore = SimpleDocumentStore(simple_kvstore=kl.KVStore(uri))
    docs = [Document(text=f"doc {i}", id_=f"d{i}") for i in range(5)]
    docstore.add_documents(docs, batch_size=100)  # one LMDB transaction per collection
    docstore.persist(str(tmp_path / "ignored" / "docstore.json"))  # flush; nothing to write
    assert not (tmp_path / "ignored").exists()
    reopened = SimpleDocumentStore(simple_kvstore=kl.KVStore(uri))
    assert reopened.get_document("d3") == docs[3]
    asyncio.run(reopened.async_add_documents([Document(text="async", id_="a1")]))
    assert SimpleDocumentStore(simple_kvstore=pickle.loads(pickle.dumps(kl.KVStore(uri)))).get_document("a1").text == "async"


def _patch_data_file(directory, old: bytes, new: bytes):
    """Damages every copy of `old` in data.mdb (LMDB keeps no checksums)."""
    data = directory / "data.mdb"
    blob = data.read_bytes()
    assert len(old) == len(new) and old in blob
    data.write_bytes(blob.replace(old, new))


def test_stored_names_that_are_not_utf8_are_corruption_not_unicode_errors(tmp_path):
    # Issue 13 A4: written by an older kvdex or damaged; reads name them.
    path = tmp_path / "lmdb"
    store = kvdex.LmdbKVStore(str(path))
    store.put("KEYMARKR", {"v": 1}, collection="c")
    store.put("k", {"v": 2}, collection="COLMARKR")
    store.close()
    _patch_data_file(path, b"KEYMARKR", b"\xff\xfeYMARKR")
    store = kvdex.LmdbKVStore(str(path))
    with pytest.raises(kvdex.CorruptionError, match=r"key '\\xff\\xfeYMARKR' is not valid UTF-8"):
        store.get_all(collection="c")
    with pytest.raises(kvdex.CorruptionError, match=r"key '\\xff\\xfeYMARKR' is not valid UTF-8"):
        asyncio.run(store.aget_all(collection="c"))
    store.close()
    _patch_data_file(path, b"COLMARKR", b"\xffOLMARKR")
    store = kvdex.LmdbKVStore(str(path))
    with pytest.raises(kvdex.CorruptionError, match=r"collection name '\\xffOLMARKR' is not valid UTF-8"):
        store.collections()
    store.close()


def test_a_damaged_value_is_corruption_naming_the_key(tmp_path):
    # Issue 13 A3: the shape ({...}) survives, the string inside is unterminated.
    path = tmp_path / "lmdb"
    store = kvdex.LmdbKVStore(str(path))
    store.put("bad", {"v": "QQQQQQQQQQ"}, collection="c")
    store.close()
    _patch_data_file(path, b'QQQQQQQQQQ"}', b'QQQQQQQQQ\\"}')
    store = kvdex.LmdbKVStore(str(path))
    for read in (lambda: store.get("bad", collection="c"), lambda: store.get_all(collection="c")):
        with pytest.raises(kvdex.CorruptionError, match="collection 'c', key 'bad'"):
            read()
    store.close()


def test_iter_items_ends_at_a_damaged_value(tmp_path):
    # As an exception ends a generator: a caller that catches the error cannot go on
    # to build a partial result from the values after it.
    path = tmp_path / "lmdb"
    store = kvdex.LmdbKVStore(str(path))
    store.put_all([("before", {"v": 1}), ("bad", {"v": "QQQQQQQQQQ"}), ("after", {"v": 2})],
                  collection="c")
    store.close()
    _patch_data_file(path, b'QQQQQQQQQQ"}', b'QQQQQQQQQ\\"}')
    store = kvdex.LmdbKVStore(str(path))
    items = store.iter_items(collection="c")
    assert next(items) == ("before", {"v": 1})
    with pytest.raises(kvdex.CorruptionError, match="collection 'c', key 'bad'"):
        next(items)
    assert list(items) == []
    assert store.get("after", collection="c") == {"v": 2}
    store.close()


def test_verify_accepts_the_repeated_keys_json_dumps_writes(store):
    # {1: "a", "1": "b"} is two members named "1" in json.dumps' text, as kvdex stores it.
    store.put("k", {1: "a", "1": "b"})
    store.verify()
    assert store.get("k") == {"1": "b"}
