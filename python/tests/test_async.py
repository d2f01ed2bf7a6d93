"""The coroutines: inline for in-memory stores, and the real path, where a C++
future's completion callback settles an asyncio future through
loop.call_soon_threadsafe (no thread parked per call, the loop never blocked)."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

import kvdex
from kvdex import _native


def os_thread_count() -> int:
    return len(os.listdir("/proc/self/task"))


@pytest.fixture(params=["inline", "executor"])
def store(request):
    s = kvdex.SimpleKVStore()
    s.async_inline = request.param == "inline"
    return s


@pytest.mark.asyncio
async def test_async_methods(store):
    await store.aput("foo", {"foo": "bar"})
    assert await store.aget("foo") == {"foo": "bar"}
    assert await store.aget("bar") is None
    await store.aput("bar", {"bar": "foo"}, collection="data")
    assert await store.aget_all() == {"foo": {"foo": "bar"}, "bar": {"bar": "foo"}}
    assert await store.adelete("bar") is True
    assert await store.adelete("bar") is False
    assert await store.aget_all() == {"foo": {"foo": "bar"}}
    await store.aput_all([(f"k{i}", {"i": i}) for i in range(10)], collection="c", batch_size=3)
    assert len(await store.aget_all(collection="c")) == 10


@pytest.mark.asyncio
async def test_async_errors(store):
    with pytest.raises(kvdex.InvalidArgumentError):
        await store.aput("k", [1])
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        await store.aput_all([("k", {})], batch_size=0)
    with pytest.raises(TypeError):
        await store.aput("k", {"s": {1}})


@pytest.mark.asyncio
async def test_three_concurrent_aput_all(store):
    pairs = {c: [(f"{c}-{i}", {"c": c, "i": i}) for i in range(500)] for c in ("a", "b", "c")}
    await asyncio.gather(*(store.aput_all(p, collection=c, batch_size=50) for c, p in pairs.items()))
    for c, p in pairs.items():
        assert await store.aget_all(c) == dict(p)


@pytest.mark.asyncio
async def test_bridge_completes_from_another_thread():
    loop = asyncio.get_running_loop()
    start = time.monotonic()
    future = _native._delayed(42, "", 0.05, loop)
    assert isinstance(future, asyncio.Future) and not future.done()
    assert await future == 42
    assert time.monotonic() - start >= 0.04


@pytest.mark.asyncio
async def test_bridge_does_not_block_the_loop():
    loop = asyncio.get_running_loop()
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    task = asyncio.create_task(ticker())
    assert await _native._delayed(1, "", 0.2, loop) == 1
    task.cancel()
    assert ticks >= 10  # the loop kept running while the C++ work waited


@pytest.mark.asyncio
async def test_bridge_parks_no_thread_per_call():
    loop = asyncio.get_running_loop()
    await _native._delayed(0, "", 0, loop)  # the executor exists now
    before = os_thread_count()
    results = await asyncio.gather(*(_native._delayed(i, "", 0.01, loop) for i in range(500)))
    assert results == list(range(500))
    assert os_thread_count() <= before


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "code, builtin",
    [("invalid_argument", ValueError), ("not_found", FileNotFoundError), ("io_error", OSError),
     ("unavailable", ConnectionError), ("not_supported", NotImplementedError)],
)
async def test_bridge_errors_become_kvdex_exceptions(code, builtin):
    with pytest.raises(kvdex.Error) as info:
        await _native._delayed(0, code, 0.01, asyncio.get_running_loop())
    assert isinstance(info.value, builtin)
    assert info.value.code == code
    assert str(info.value) == "delayed failure"


@pytest.mark.asyncio
async def test_cancelled_await_is_left_alone():
    loop = asyncio.get_running_loop()
    future = _native._delayed(7, "", 0.05, loop)
    future.cancel()
    await asyncio.sleep(0.15)  # the C++ side completes into a cancelled future: no error
    assert future.cancelled()


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_loop_closed_before_completion_is_harmless():
    loop = asyncio.new_event_loop()
    future = _native._delayed(7, "", 0.05, loop)
    loop.close()
    time.sleep(0.15)  # call_soon_threadsafe fails on a closed loop: dropped quietly
    assert not future.done()


@pytest.mark.asyncio
async def test_many_concurrent_operations_through_the_executor():
    store = kvdex.SimpleKVStore()
    store.async_inline = False
    await asyncio.gather(*(store.aput(f"k{i}", {"i": i}) for i in range(300)))
    values = await asyncio.gather(*(store.aget(f"k{i}") for i in range(300)))
    assert values == [{"i": i} for i in range(300)]
    removed = await asyncio.gather(*(store.adelete(f"k{i}") for i in range(0, 300, 2)))
    assert all(removed)
    assert len(await store.aget_all()) == 150


def test_interpreter_exit_with_completions_pending():
    # C++ threads completing futures while Python finalizes must not take the GIL
    # (CPython would end them with a forced unwind, aborting the process).
    import subprocess
    import sys

    code = (
        "import asyncio, kvdex\n"
        "from kvdex import _native\n"
        "loop = asyncio.new_event_loop()\n"
        "futures = [_native._delayed(1, '', 0.0001 * i, loop) for i in range(2000)]\n"
    )
    for _ in range(3):
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
