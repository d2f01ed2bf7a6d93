"""The store classes users hold: the C++ classes of kvdex._native plus coroutines,
fsspec paths and classmethods.

Method names, argument names and defaults are LlamaIndex's (BaseKVStore,
SimpleKVStore); see docs/python.md for what differs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import warnings
from typing import Any, Dict, Iterable, List, Optional, Tuple

from . import _native

_log = logging.getLogger("kvdex")

DEFAULT_COLLECTION = "data"
DEFAULT_BATCH_SIZE = 1

__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_COLLECTION", "KVStore", "SimpleKVStore", "open"]


class _AsyncMixin:
    """The coroutines of LlamaIndex's BaseKVStore.

    With ``async_inline`` false, each coroutine starts the C++ asynchronous
    operation (on kvdex's executor, or on the I/O threads of a backend that has
    its own) and awaits an asyncio future that the C++ future's completion
    callback settles through ``loop.call_soon_threadsafe``: the event loop never
    blocks and no thread is parked per call. With ``async_inline`` true (set for
    in-memory stores: SimpleKVStore, and ``memory:``/``json:`` stores opened by
    URI), the coroutine runs the synchronous operation on the loop's thread, as
    LlamaIndex's SimpleKVStore does: a single get or put takes about a
    microsecond, less than a hand-off to another thread; a large put_all or
    get_all holds the loop for as long as it runs, as LlamaIndex's does.
    """

    async_inline: bool = False

    async def aput(self, key: str, val: dict, collection: str = DEFAULT_COLLECTION) -> None:
        if self.async_inline:
            return self.put(key, val, collection)
        return await self._aput(key, val, collection, asyncio.get_running_loop())

    async def aput_all(
        self,
        kv_pairs: Iterable[Tuple[str, dict]],
        collection: str = DEFAULT_COLLECTION,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        if self.async_inline:
            return self.put_all(kv_pairs, collection, batch_size)
        return await self._aput_all(kv_pairs, collection, batch_size, asyncio.get_running_loop())

    async def aget(self, key: str, collection: str = DEFAULT_COLLECTION) -> Optional[dict]:
        if self.async_inline:
            return self.get(key, collection)
        return await self._aget(key, collection, asyncio.get_running_loop())

    async def aget_all(self, collection: str = DEFAULT_COLLECTION) -> Dict[str, dict]:
        if self.async_inline:
            return self.get_all(collection)
        return await self._aget_all(collection, asyncio.get_running_loop())

    async def adelete(self, key: str, collection: str = DEFAULT_COLLECTION) -> bool:
        if self.async_inline:
            return self.delete(key, collection)
        return await self._adelete(key, collection, asyncio.get_running_loop())


class _ClosingMixin:
    """``close()`` (native) and ``with store:``, which closes the store on the way
    out and raises if its last save fails."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()


# ---- fsspec -------------------------------------------------------------------------


def _local_path(path: str, fs: Any) -> Optional[str]:
    """The local path to use natively, or None when ``fs`` must do the I/O."""
    if fs is None:
        return path[len("file://"):] if path.startswith("file://") else path
    local = sys.modules.get("fsspec.implementations.local")
    # Exactly LocalFileSystem (what fsspec.filesystem("file") returns): a subclass
    # may change how files are opened, so it goes through its own methods.
    if local is not None and type(fs) is local.LocalFileSystem:
        return fs._strip_protocol(path)
    return None


def _write_through_fs(fs: Any, persist_path: str, text: str) -> None:
    # The calls LlamaIndex's SimpleKVStore.persist makes, in its order.
    dirpath = os.path.dirname(persist_path)
    if not fs.exists(dirpath):
        fs.makedirs(dirpath)
    with fs.open(persist_path, "w", encoding="utf-8") as f:
        f.write(text)


def _persist_simple(store: "_native.SimpleKVStore", persist_path: Any, fs: Any) -> None:
    path = os.fspath(persist_path)
    local = _local_path(path, fs)
    if local is not None:
        store._persist_local(local)  # atomic: temp file, fsync, rename, fsync dir
    else:
        _write_through_fs(fs, path, store.to_json_text())


def _load_simple(persist_path: Any, fs: Any) -> "_native._StoreHandle":
    path = os.fspath(persist_path)
    local = _local_path(path, fs)
    if local is not None:
        return _native.SimpleKVStore._load(local)
    with fs.open(path, "rb") as f:
        data = f.read()
    return _native.SimpleKVStore._parse(data, path)


# ---- Stores -------------------------------------------------------------------------


class KVStore(_ClosingMixin, _AsyncMixin, _native.KVStore):
    """Any kvdex store, opened by URI (see :func:`open`).

    ``async_inline`` is true for in-memory stores (``memory:``, ``json:``).

    Use it in a ``with`` block, or call ``close()``: a ``json:`` store saves its file
    there and raises if it cannot. A store left to the garbage collector still
    saves, but a failure can then only be reported as a ``ResourceWarning`` and an
    error logged on the ``kvdex`` logger.
    """

    def __init__(self, uri: str, *, create_if_missing: bool = True, read_only: bool = False) -> None:
        super().__init__(uri, create_if_missing=create_if_missing, read_only=read_only)
        self.async_inline = self.in_memory
        self._uri = uri

    def __del__(self) -> None:
        # The C++ destructor would save too, but could only swallow a failure.
        # _uri is set once the native store exists: a failed __init__ left nothing to
        # save (and the native part must not be touched then).
        if "_uri" not in self.__dict__ or self.closed:
            return
        try:
            self.close()
        except Exception as e:  # noqa: BLE001 - reported below, never silenced
            message = (
                f"kvdex store {self._uri!r} was garbage-collected without "
                f"close() and its final save failed; its unsaved writes are lost: {e}"
            )
            try:
                _log.error(message)
                warnings.warn(message, ResourceWarning, source=self)
            except Exception:  # noqa: BLE001 - interpreter shutting down
                pass

    def __reduce__(self):
        raise TypeError(
            "a store opened by URI cannot be pickled; pickle the URI and open it again"
        )

    def __repr__(self) -> str:
        if self.closed:
            return "<kvdex.KVStore closed>"
        return f"<kvdex.KVStore collections={self.collections()!r}>"


class SimpleKVStore(_ClosingMixin, _AsyncMixin, _native.SimpleKVStore):
    """LlamaIndex's SimpleKVStore, in C++.

    An in-memory store: ``{collection: {key: value}}`` in insertion order,
    persisted to and loaded from one JSON file byte-identical to LlamaIndex's.
    ``SimpleKVStore(data)`` takes the same ``data`` as LlamaIndex's (a dict of
    collections of dicts), copying it.
    """

    async_inline = True

    def persist(self, persist_path: str, fs: Any = None) -> None:
        """Write the store to ``persist_path`` (parent directories are created).

        Local paths (``fs`` None or an fsspec ``LocalFileSystem``) are written
        natively and atomically; any other fsspec filesystem receives the same bytes
        through ``fs.open(persist_path, "w")``, as LlamaIndex writes them.
        """
        _persist_simple(self, persist_path, fs)

    @classmethod
    def from_persist_path(cls, persist_path: str, fs: Any = None) -> "SimpleKVStore":
        """Load a store persisted by kvdex or by LlamaIndex."""
        return cls(_load_simple(persist_path, fs))

    @classmethod
    def from_dict(cls, save_dict: dict) -> "SimpleKVStore":
        return cls(save_dict)

    @classmethod
    def from_json_text(cls, text: Any) -> "SimpleKVStore":
        """A store from the text (str or bytes) of a persist file."""
        return cls(_native.SimpleKVStore._parse(text, "<text>"))

    def __repr__(self) -> str:
        if self.closed:
            return "<kvdex.SimpleKVStore closed>"
        return f"<kvdex.SimpleKVStore collections={self.collections()!r}>"


def open(uri: str, *, create_if_missing: bool = True, read_only: bool = False) -> KVStore:  # noqa: A001
    """A store from a URI: ``lmdb:PATH``, ``json:PATH.json`` (a SimpleKVStore bound to
    its file, written back on ``flush()`` and ``close()``), ``memory:``, or a bare
    path (``*.json`` is json:, anything else lmdb:).

    ``with kvdex.open("json:docstore.json") as store: ...`` saves the file when the
    block ends and raises if that fails (``close()`` does the same).
    """
    return KVStore(uri, create_if_missing=create_if_missing, read_only=read_only)


# ---- LmdbKVStore (built when the C++ library has the LMDB backend) -----------------

if _native.HAVE_LMDB:

    def _reopen_lmdb(cls: type, path: str, options: dict) -> "LmdbKVStore":
        return cls(path, **options)

    class LmdbKVStore(_ClosingMixin, _AsyncMixin, _native.LmdbKVStore):
        """The durable embedded store: a directory holding an LMDB environment.

        Every write is committed (each put_all batch in one transaction) before it
        returns, so ``persist`` has nothing to do. Asynchronous calls run on kvdex's
        executor and never block the event loop.

        Pickling (and so multiprocessing) re-opens the same directory in the other
        process; LMDB lets many processes share it. Do not use a store inherited
        through fork(): open it again (passing it to a Pool pickles it, which does).
        """

        async_inline = False

        def persist(self, persist_path: Optional[str] = None, fs: Any = None) -> None:
            """Nothing to do: the store is durable after every write."""
            return None

        @classmethod
        def from_persist_path(cls, persist_path: str, fs: Any = None) -> "LmdbKVStore":
            """Open the store in directory ``persist_path`` (local only)."""
            path = os.fspath(persist_path)
            local = _local_path(path, fs)
            if local is None:
                from .exceptions import NotSupportedError

                raise NotSupportedError("LmdbKVStore lives on the local file system; fs must be None")
            return cls(local)

        def to_dict(self) -> Dict[str, Dict[str, dict]]:
            return {name: self.get_all(name) for name in self.collections()}

        def __reduce__(self):
            return (_reopen_lmdb, (type(self), self.path, self._options()))

        def __repr__(self) -> str:
            if self.closed:
                return "<kvdex.LmdbKVStore closed>"
            return f"<kvdex.LmdbKVStore path={self.path!r}>"

    __all__.append("LmdbKVStore")
