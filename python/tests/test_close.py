"""close(), ``with`` and garbage collection: a save that did not happen is never
reported as done (issue 13, B7), and paths with NUL bytes are refused (D18)."""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import subprocess
import uuid
import warnings

import pytest

import kvdex


def _block_directory(path):
    """Makes the save of a store under directory `path` fail whoever runs the test
    (root ignores permissions): a regular file where the directory should be."""
    path.write_text("not a directory")


@contextlib.contextmanager
def small_tmpfs(tmp_path):
    """A 64 KiB tmpfs (needs root to mount); skips the test where mount is denied."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)],
                          capture_output=True)
    if proc.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_with_saves_the_file_and_closes(tmp_path):
    path = tmp_path / "s.json"
    with kvdex.open(f"json:{path}") as store:
        store.put("k", {"v": 1})
        assert not store.closed
    assert store.closed
    assert json.loads(path.read_text()) == {"data": {"k": {"v": 1}}}
    with pytest.raises(kvdex.FailedPreconditionError) as info:
        store.get("k")
    assert str(info.value) == f"store 'json:{path}' is closed"
    assert isinstance(info.value, RuntimeError)
    for call in (lambda: store.put("k", {}), lambda: store.get_all(), lambda: store.delete("k"),
                 store.collections, store.flush):
        with pytest.raises(kvdex.FailedPreconditionError):
            call()
    store.close()  # again: nothing to do
    assert repr(store) == "<kvdex.KVStore closed>"


def test_close_raises_when_the_save_fails_and_keeps_the_writes(tmp_path):
    sub = tmp_path / "sub"
    store = kvdex.open(f"json:{sub / 's.json'}")
    store.put("k", {"v": 1})
    _block_directory(sub)
    with pytest.raises(kvdex.KvdexIOError) as info:
        store.close()
    assert str(sub) in str(info.value)
    assert not store.closed
    assert store.get("k") == {"v": 1}
    sub.unlink()
    store.close()
    assert json.loads((sub / "s.json").read_text()) == {"data": {"k": {"v": 1}}}


def test_with_block_raises_when_the_disk_is_full(tmp_path):
    with small_tmpfs(tmp_path) as mount_point:
        path = mount_point / "s.json"
        with pytest.raises(kvdex.ResourceExhaustedError) as info:
            with kvdex.open(f"json:{path}") as store:
                store.put_all([(f"k{i}", {"text": "x" * 1000}) for i in range(200)])
        assert "No space left on device" in str(info.value)
        assert not path.exists()
        assert not store.closed
        for i in range(200):
            store.delete(f"k{i}")
        store.close()  # small enough now
        assert json.loads(path.read_text()) == {"data": {}}


def test_a_failed_save_at_garbage_collection_warns_and_logs(tmp_path, caplog):
    sub = tmp_path / "sub"
    store = kvdex.open(f"json:{sub / 's.json'}")
    store.put("k", {"v": 1})
    _block_directory(sub)
    caplog.set_level(logging.ERROR, logger="kvdex")
    with pytest.warns(ResourceWarning, match="garbage-collected without close"):
        del store
        gc.collect()
    assert len(caplog.records) == 1
    record = caplog.records[0]
    assert record.name == "kvdex" and record.levelno == logging.ERROR
    assert "unsaved writes are lost" in record.getMessage() and str(sub) in record.getMessage()


def test_a_store_collected_unclosed_still_saves_quietly(tmp_path):
    path = tmp_path / "s.json"
    store = kvdex.open(f"json:{path}")
    store.put("k", {"v": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        del store
        gc.collect()
    assert json.loads(path.read_text()) == {"data": {"k": {"v": 1}}}


def test_every_store_class_closes(tmp_path):
    with kvdex.SimpleKVStore() as simple:
        simple.put("k", {"v": 1})
    with pytest.raises(kvdex.FailedPreconditionError):
        simple.to_dict()
    with kvdex.open("memory:") as memory:
        memory.put("k", {"v": 1})
    with pytest.raises(kvdex.FailedPreconditionError):
        memory.get("k")
    if kvdex.HAVE_LMDB:
        with kvdex.LmdbKVStore(str(tmp_path / "kv")) as lmdb:
            lmdb.put("k", {"v": 1})
        with pytest.raises(kvdex.FailedPreconditionError):
            lmdb.get("k")
        # Closing released the environment: the directory opens again, read-only too.
        assert kvdex.LmdbKVStore(str(tmp_path / "kv"), read_only=True).get("k") == {"v": 1}


def test_paths_with_a_nul_byte_are_refused(tmp_path):
    bad = str(tmp_path / "a") + "\x00b"
    for make in (
        lambda: kvdex.open("json:" + bad + ".json"),
        lambda: kvdex.open(bad + ".json"),
        lambda: kvdex.SimpleKVStore().persist(bad),
        lambda: kvdex.SimpleKVStore.from_persist_path(bad),
    ) + ((lambda: kvdex.LmdbKVStore(bad), lambda: kvdex.open("lmdb:" + bad)) if kvdex.HAVE_LMDB else ()):
        with pytest.raises(ValueError, match="NUL byte"):
            make()
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(not kvdex.HAVE_LMDB, reason="needs the LMDB backend")
def test_a_damaged_stored_value_names_store_collection_and_key(tmp_path):
    directory = tmp_path / "kv"
    marker = uuid.uuid4().hex
    with kvdex.LmdbKVStore(str(directory)) as store:
        store.put("the-key", {"v": marker}, collection="the/collection")
    data = directory / "data.mdb"
    raw = data.read_bytes()
    assert raw.count(marker.encode()) == 1
    # Same length, so LMDB's own structure is intact: only the JSON text is broken.
    data.write_bytes(raw.replace(marker.encode(), b"\x01" + marker.encode()[1:]))
    store = kvdex.LmdbKVStore(str(directory))
    for read in (lambda: store.get("the-key", collection="the/collection"),
                 lambda: store.get_all(collection="the/collection"),
                 lambda: list(store.iter_items(collection="the/collection"))):
        with pytest.raises(kvdex.CorruptionError) as info:
            read()
        message = str(info.value)
        assert f"lmdb:{directory}" in message, message
        assert "the/collection" in message and "the-key" in message, message
    store.close()
