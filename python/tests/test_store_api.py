"""kvdex.SimpleKVStore and kvdex.open: LlamaIndex's API, names and defaults."""

from __future__ import annotations

import inspect
import json
import operator
import os

import fsspec
import pytest
from llama_index.core.storage.kvstore import SimpleKVStore as LlamaSimpleKVStore

import kvdex

SYNC_METHODS = ["put", "put_all", "get", "get_all", "delete"]
ASYNC_METHODS = ["aput", "aput_all", "aget", "aget_all", "adelete"]


def test_import_kvdex_does_not_import_llama_index():
    import subprocess
    import sys

    code = "import sys, kvdex; s = kvdex.SimpleKVStore(); print('llama_index' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_method_exists_with_llamaindex_names():
    for name in SYNC_METHODS + ASYNC_METHODS + ["persist", "from_persist_path", "to_dict", "from_dict"]:
        assert callable(getattr(kvdex.SimpleKVStore, name)), name
    for name in ASYNC_METHODS:
        assert inspect.iscoroutinefunction(getattr(kvdex.SimpleKVStore, name)), name
        ours = inspect.signature(getattr(kvdex.SimpleKVStore, name))
        theirs = inspect.signature(getattr(LlamaSimpleKVStore, name))
        assert list(ours.parameters) == list(theirs.parameters), name
        assert [p.default for p in ours.parameters.values()] == [
            p.default for p in theirs.parameters.values()
        ], name


def test_keyword_arguments_and_defaults():
    store = kvdex.SimpleKVStore()
    store.put(key="k", val={"v": 1})
    store.put(key="k", val={"v": 2}, collection="c")
    assert store.get(key="k") == {"v": 1}
    assert store.get(key="k", collection="c") == {"v": 2}
    store.put_all(kv_pairs=[("a", {"x": 1})], collection="c", batch_size=1)
    assert store.get_all(collection="c") == {"k": {"v": 2}, "a": {"x": 1}}
    assert store.delete(key="a", collection="c") is True
    assert store.delete(key="a", collection="c") is False
    assert store.get_all() == {"k": {"v": 1}}


def test_unknown_collection_is_created_on_read_as_in_llamaindex():
    ours, theirs = kvdex.SimpleKVStore(), LlamaSimpleKVStore()
    for store in (ours, theirs):
        store.put("k", {"v": 1})
        assert store.get("x", collection="read") is None
        assert store.get_all("listed") == {}
        assert store.delete("x", collection="deleted") is False
    assert list(ours.to_dict()) == list(theirs.to_dict()) == ["data", "read", "listed", "deleted"]
    assert ours.to_json_text() == json.dumps(theirs.to_dict())


@pytest.mark.parametrize("batch_size", [1, 2, 3, 7, 1000])
def test_any_batch_size_at_least_one(batch_size):
    store = kvdex.SimpleKVStore()
    pairs = [(f"k{i}", {"i": i}) for i in range(10)]
    store.put_all(pairs, batch_size=batch_size)
    assert store.get_all() == dict(pairs)


@pytest.mark.parametrize("batch_size", [0, -1])
def test_batch_size_below_one_is_value_error(batch_size):
    store = kvdex.SimpleKVStore()
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        store.put_all([("k", {})], batch_size=batch_size)
    with pytest.raises(kvdex.InvalidArgumentError):
        store.put_all([("k", {})], batch_size=batch_size)
    assert store.get("k") is None


def test_put_all_takes_any_iterable_and_validates_first():
    store = kvdex.SimpleKVStore()
    store.put_all(((f"k{i}", {"i": i}) for i in range(3)), batch_size=2)
    store.put_all([["list-pair", {"ok": True}]])
    assert len(store.get_all()) == 4
    with pytest.raises(kvdex.InvalidArgumentError):
        store.put_all([("good", {"a": 1}), ("bad", [1])])
    assert store.get("good") is None  # nothing written when any value is bad
    with pytest.raises(ValueError, match="not enough values to unpack"):
        store.put_all([("only-key",)])
    with pytest.raises(ValueError, match="too many values to unpack"):
        store.put_all([("k", {}, "extra")])


def test_insertion_order_and_overwrite_keep_position():
    store = kvdex.SimpleKVStore()
    for key in ["b", "a", "c"]:
        store.put(key, {"k": key})
    store.put("a", {"k": "a2"})
    store.delete("b")
    store.put("b", {"k": "b2"})
    assert list(store.get_all()) == ["a", "c", "b"]
    assert store.get("a") == {"k": "a2"}


def test_store_is_truthy_when_empty():
    # LlamaIndex writes `simple_kvstore or SimpleKVStore()`: an empty store must stay.
    assert bool(kvdex.SimpleKVStore())


def test_constructor_data_and_dict_round_trip():
    data = {"data": {"k": {"v": 1}}, "empty": {}, "other": {"a": {"n": [1, 2]}}}
    store = kvdex.SimpleKVStore(data)
    data["data"]["k"]["v"] = 2  # copied, not shared
    assert store.to_dict() == {"data": {"k": {"v": 1}}, "empty": {}, "other": {"a": {"n": [1, 2]}}}
    again = kvdex.SimpleKVStore.from_dict(store.to_dict())
    assert type(again) is kvdex.SimpleKVStore
    assert again.to_json_text() == store.to_json_text()


@pytest.mark.parametrize(
    "bad, message",
    [
        ([1], "expected a dict of collections"),
        ({"c": [1]}, "collection 'c' is not a dict"),
        ({"c": {"k": 1}}, "value of key 'k' in collection 'c' is not a dict"),
    ],
)
def test_from_dict_rejects_other_shapes(bad, message):
    with pytest.raises(kvdex.InvalidArgumentError, match=message):
        kvdex.SimpleKVStore.from_dict(bad)


def test_persist_and_load_local(tmp_path):
    store = kvdex.SimpleKVStore()
    store.put("k", {"text": "Grüße 🚀"}, collection="docstore/data")
    path = tmp_path / "deep" / "dir" / "kvstore.json"  # parents are created
    store.persist(str(path))
    assert path.read_text() == json.dumps({"docstore/data": {"k": {"text": "Grüße 🚀"}}})
    assert os.listdir(path.parent) == ["kvstore.json"]  # no temporary file left
    loaded = kvdex.SimpleKVStore.from_persist_path(str(path))
    assert loaded.to_dict() == store.to_dict()
    # os.PathLike works too, and fsspec's local filesystem takes the native path.
    store.persist(path, fs=fsspec.filesystem("file"))
    assert kvdex.SimpleKVStore.from_persist_path(path, fs=fsspec.filesystem("file")).to_dict() == store.to_dict()
    assert LlamaSimpleKVStore.from_persist_path(str(path)).to_dict() == store.to_dict()


def test_persist_through_an_fsspec_filesystem_writes_llamaindex_bytes():
    fs = fsspec.filesystem("memory")
    ours, theirs = kvdex.SimpleKVStore(), LlamaSimpleKVStore()
    for store in (ours, theirs):
        store.put("k", {"v": [1.5, None, "é"]}, collection="c")
    ours.persist("/kvdex-test/ours/kv.json", fs=fs)
    theirs.persist("/kvdex-test/theirs/kv.json", fs=fs)
    assert fs.cat("/kvdex-test/ours/kv.json") == fs.cat("/kvdex-test/theirs/kv.json")
    loaded = kvdex.SimpleKVStore.from_persist_path("/kvdex-test/theirs/kv.json", fs=fs)
    assert loaded.to_dict() == theirs.to_dict()
    with pytest.raises(FileNotFoundError):
        kvdex.SimpleKVStore.from_persist_path("/kvdex-test/missing.json", fs=fs)
    fs.rm("/kvdex-test", recursive=True)


def test_from_json_text_and_to_json_text():
    text = '{"c": {"k": {"a": 1, "b": NaN}}}'
    store = kvdex.SimpleKVStore.from_json_text(text)
    assert store.to_json_text() == text
    assert kvdex.SimpleKVStore.from_json_text(text.encode()).to_json_text() == text


def test_open_memory_and_json(tmp_path):
    mem = kvdex.open("memory:")
    assert isinstance(mem, kvdex.KVStore) and mem.in_memory and mem.async_inline
    mem.put("k", {"v": 1})
    assert mem.get("k") == {"v": 1}
    path = tmp_path / "bound.json"
    bound = kvdex.open(f"json:{path}")
    bound.put("k", {"v": 2}, collection="c")
    bound.flush()
    assert json.loads(path.read_text()) == {"c": {"k": {"v": 2}}}
    assert kvdex.open(str(path)).get("k", collection="c") == {"v": 2}  # bare *.json is json:
    with pytest.raises(kvdex.InvalidArgumentError):
        kvdex.open("nosuchscheme:x")
    with pytest.raises(kvdex.NotFoundError):
        kvdex.open(f"json:{tmp_path / 'missing.json'}", create_if_missing=False)


def test_threads_share_a_store():
    # put_all and get_all release the GIL; batches are never seen half applied.
    import threading

    store = kvdex.SimpleKVStore()
    errors = []

    def writer(t):
        try:
            for round_ in range(20):
                store.put_all([(f"t{t}-{i}", {"round": round_}) for i in range(200)],
                              collection="c", batch_size=200)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    def reader():
        try:
            for _ in range(50):
                rounds = {}
                for key, value in store.get_all("c").items():
                    rounds.setdefault(key.split("-")[0], set()).add(value["round"])
                # one batch holds a whole round of one writer: never two rounds at once
                assert all(len(r) == 1 for r in rounds.values()), rounds
        except Exception as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(3)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(store.get_all("c")) == 600


def iter_items_stores(tmp_path):
    yield kvdex.SimpleKVStore()
    yield kvdex.open("memory:")
    if kvdex.HAVE_LMDB:
        yield kvdex.LmdbKVStore(str(tmp_path / "lmdb"))


def test_iter_items_is_get_all_decoded_one_value_at_a_time(tmp_path):
    for store in iter_items_stores(tmp_path):
        pairs = [(f"k{i}", {"i": i, "nested": {"list": [i, str(i)], "none": None}}) for i in range(5)]
        store.put_all(pairs, collection="c")
        expected = store.get_all("c")
        items = store.iter_items("c")
        assert iter(items) is items
        assert operator.length_hint(items) == 5
        first = next(items)
        assert first == pairs[0] and operator.length_hint(items) == 4
        # A snapshot: writes after the call are not seen, and what was yielded is a copy.
        store.put("k1", {"changed": True}, collection="c")
        store.delete("k2", collection="c")
        store.put("new", {"v": 1}, collection="c")
        assert list(items) == list(expected.items())[1:]
        first[1]["nested"]["list"].append("mutated")
        assert store.get("k0", collection="c") == expected["k0"] != first[1]
        assert [key for key, _ in store.iter_items("c")] == list(store.get_all("c"))
        assert list(store.iter_items("c")) == list(store.get_all("c").items())
        assert operator.length_hint(items) == 0
        for _ in range(2):
            with pytest.raises(StopIteration):
                next(items)
        assert operator.length_hint(items) == 0
        assert list(store.iter_items("missing")) == [] and store.get_all("missing") == {}
        # Taken before close(): still readable after, a new one is not.
        before_close = store.iter_items("c")
        store.close()
        assert len(list(before_close)) == 5
        with pytest.raises(kvdex.FailedPreconditionError):
            store.iter_items("c")


def test_iter_items_checks_its_arguments():
    store = kvdex.SimpleKVStore()
    with pytest.raises(TypeError, match="collection"):
        store.iter_items(3)
    assert list(store.iter_items()) == list(store.get_all().items()) == []
