"""Pickling, copying and crossing into multiprocessing workers."""

from __future__ import annotations

import asyncio
import copy
import multiprocessing
import pickle

import pytest

import kvdex
from kvdex.llama_index import SimpleKVStore as DropIn


def filled(cls):
    store = cls()
    store.put("k", {"v": [1, 2.5, "é"], "big": 2**70}, collection="docstore/data")
    store.put("other", {"x": None})
    store.get("missing", collection="empty")  # an empty collection survives too
    return store


@pytest.mark.parametrize("cls", [kvdex.SimpleKVStore, DropIn])
@pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_round_trip(cls, protocol):
    store = filled(cls)
    again = pickle.loads(pickle.dumps(store, protocol=protocol))
    assert type(again) is cls
    assert again.to_dict() == store.to_dict()
    assert list(again.to_dict()) == ["docstore/data", "data", "empty"]


@pytest.mark.parametrize("cls", [kvdex.SimpleKVStore, DropIn])
def test_deepcopy_is_independent(cls):
    store = filled(cls)
    twin = copy.deepcopy(store)
    twin.put("k", {"changed": True}, collection="docstore/data")
    store.delete("other")
    assert store.get("k", collection="docstore/data")["v"] == [1, 2.5, "é"]
    assert twin.get("other") == {"x": None}
    assert copy.copy(store).to_dict() == store.to_dict()


def test_drop_in_pickle_keeps_no_python_mapping():
    store = filled(DropIn)
    assert not hasattr(store, "_collections_mappings")
    state = store.__getstate__()
    assert set(state) == {"kvdex_store"}
    assert isinstance(state["kvdex_store"], kvdex.SimpleKVStore)


def test_opened_store_refuses_pickle():
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(kvdex.open("memory:"))


# ---- multiprocessing ------------------------------------------------------------------


def worker_read_and_write(store):
    """Runs in the child: reads what the parent stored, writes, goes through async."""
    value = store.get("k", collection="docstore/data")
    store.put("child", {"from": "worker"})
    store.async_inline = False  # go through the C++ executor (recreated after fork)

    async def use_async():
        await store.aput("async-child", {"ok": True})
        return await store.aget("async-child")

    async_value = asyncio.run(use_async())
    return value, async_value, store


@pytest.mark.parametrize("method", ["spawn", "fork", "forkserver"])
def test_store_crosses_into_a_worker(method):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"{method} not available")
    store = filled(kvdex.SimpleKVStore)
    context = multiprocessing.get_context(method)
    with context.Pool(1) as pool:
        value, async_value, returned = pool.apply(worker_read_and_write, (store,))
    assert value == {"v": [1, 2.5, "é"], "big": 2**70}
    assert async_value == {"ok": True}
    assert returned.get("child") == {"from": "worker"}
    assert store.get("child") is None  # the worker had a copy


def child_uses_inherited_store(store, queue):
    store.async_inline = False

    async def use_async():
        await store.aput("forked", {"pid": 1})
        return await store.aget_all()

    queue.put(sorted(asyncio.run(use_async())))


def test_forked_child_uses_an_inherited_store_and_executor():
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork")
    store = filled(kvdex.SimpleKVStore)
    store.async_inline = False
    asyncio.run(store.aput("before-fork", {"x": 1}))  # the executor's threads exist now
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=child_uses_inherited_store, args=(store, queue))
    child.start()
    keys = queue.get(timeout=30)
    child.join(30)
    assert child.exitcode == 0
    assert keys == ["before-fork", "forked", "other"]
