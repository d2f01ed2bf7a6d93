"""kvdex as LlamaIndex's key-value store: drop-in classes.

    # before
    from llama_index.core.storage.kvstore import SimpleKVStore
    # after
    from kvdex.llama_index import SimpleKVStore

``SimpleKVStore`` here *is a* LlamaIndex ``SimpleKVStore`` (so LlamaIndex's
``isinstance`` checks pass: SimpleDocumentStore / SimpleIndexStore persist it, their
``to_dict`` accept it, IngestionPipeline reads it) while every method runs in C++;
it keeps no Python dict of the data.

LlamaIndex builds its own ``SimpleKVStore`` where you give it none
(``SimpleDocumentStore()``, ``SimpleDocumentStore.from_persist_dir(...)``,
``StorageContext.from_defaults(...)``, ``StorageContext.from_dict``). For those,
use the ``SimpleDocumentStore`` / ``SimpleIndexStore`` of this module, or call
:func:`install` once to make LlamaIndex's docstore, index store and ingestion cache
(``IngestionCache()``, ``IngestionPipeline.load()``) build kvdex's store everywhere.

Importing this module imports llama-index-core; ``import kvdex`` does not.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

import fsspec
from llama_index.core.ingestion import cache as _li_ingestion_cache
from llama_index.core.ingestion.cache import IngestionCache as _IngestionCache
from llama_index.core.storage.docstore import simple_docstore as _li_simple_docstore
from llama_index.core.storage.docstore.keyval_docstore import KVDocumentStore as _KVDocumentStore
from llama_index.core.storage.docstore.simple_docstore import (
    SimpleDocumentStore as _LlamaSimpleDocumentStore,
)
from llama_index.core.storage.docstore.types import RefDocInfo
from llama_index.core.storage.docstore.utils import json_to_doc
from llama_index.core.storage.index_store import simple_index_store as _li_simple_index_store
from llama_index.core.storage.index_store.simple_index_store import (
    SimpleIndexStore as _LlamaSimpleIndexStore,
)
from llama_index.core.storage.kvstore.simple_kvstore import SimpleKVStore as _LlamaSimpleKVStore
from llama_index.core.storage.kvstore.types import DEFAULT_BATCH_SIZE, DEFAULT_COLLECTION

import kvdex
from kvdex import _stores
from kvdex._redis import host_and_port

__all__ = [
    "KVStore",
    "PostgresKVStore",
    "RedisKVStore",
    "SimpleDocumentStore",
    "SimpleIndexStore",
    "SimpleKVStore",
    "install",
    "uninstall",
]


class _Delegating(_LlamaSimpleKVStore):
    """A LlamaIndex SimpleKVStore whose every method runs on a kvdex store.

    ``__init__`` of LlamaIndex's classes is not called on purpose: there is no
    ``_collections_mappings`` (the data lives in C++ only).
    """

    _store: Any  # the kvdex store

    @property
    def kvdex_store(self) -> Any:
        """The kvdex store underneath (for kvdex-only methods: collections(), flush(), ...)."""
        return self._store

    def put(self, key: str, val: dict, collection: str = DEFAULT_COLLECTION) -> None:
        self._store.put(key, val, collection)

    async def aput(self, key: str, val: dict, collection: str = DEFAULT_COLLECTION) -> None:
        await self._store.aput(key, val, collection)

    def put_all(
        self,
        kv_pairs: List[Tuple[str, dict]],
        collection: str = DEFAULT_COLLECTION,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self._store.put_all(kv_pairs, collection, batch_size)

    async def aput_all(
        self,
        kv_pairs: List[Tuple[str, dict]],
        collection: str = DEFAULT_COLLECTION,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        await self._store.aput_all(kv_pairs, collection, batch_size)

    def get(self, key: str, collection: str = DEFAULT_COLLECTION) -> Optional[dict]:
        return self._store.get(key, collection)

    async def aget(self, key: str, collection: str = DEFAULT_COLLECTION) -> Optional[dict]:
        return await self._store.aget(key, collection)

    def get_all(self, collection: str = DEFAULT_COLLECTION) -> Dict[str, dict]:
        return self._store.get_all(collection)

    async def aget_all(self, collection: str = DEFAULT_COLLECTION) -> Dict[str, dict]:
        return await self._store.aget_all(collection)

    def iter_items(self, collection: str = DEFAULT_COLLECTION) -> Iterator[Tuple[str, dict]]:
        """``get_all(collection).items()``, each value decoded when it is reached (see
        ``kvdex.KVStore.iter_items``)."""
        return self._store.iter_items(collection)

    def delete(self, key: str, collection: str = DEFAULT_COLLECTION) -> bool:
        return self._store.delete(key, collection)

    async def adelete(self, key: str, collection: str = DEFAULT_COLLECTION) -> bool:
        return await self._store.adelete(key, collection)

    def _get_collection_mapping(self, collection: str) -> Any:
        raise NotImplementedError(
            "kvdex keeps no Python mapping per collection; use get_all(collection)"
        )

    def __getstate__(self) -> dict:
        return {"kvdex_store": self._store}

    def __setstate__(self, state: dict) -> None:
        self._store = state["kvdex_store"]


class SimpleKVStore(_Delegating):
    """LlamaIndex's ``SimpleKVStore``, backed by ``kvdex.SimpleKVStore``.

    Same constructor, methods, arguments, defaults and file format; every
    ``batch_size >= 1`` is accepted (LlamaIndex's accepts only 1). ``get`` returns
    an independent copy of the stored value; ``get_all`` and ``to_dict`` return
    independent copies too (LlamaIndex's share the stored dicts).
    """

    def __init__(self, data: Optional[Dict[str, Dict[str, dict]]] = None) -> None:
        self._store = kvdex.SimpleKVStore(data)

    def persist(self, persist_path: str, fs: Optional[fsspec.AbstractFileSystem] = None) -> None:
        self._store.persist(persist_path, fs)

    @classmethod
    def from_persist_path(
        cls, persist_path: str, fs: Optional[fsspec.AbstractFileSystem] = None
    ) -> "SimpleKVStore":
        return cls(_stores._load_simple(persist_path, fs))

    def to_dict(self) -> dict:
        return self._store.to_dict()

    @classmethod
    def from_dict(cls, save_dict: dict) -> "SimpleKVStore":
        return cls(save_dict)

    def __repr__(self) -> str:
        return f"<kvdex.llama_index.SimpleKVStore collections={self._store.collections()!r}>"


class KVStore(_Delegating):
    """Any kvdex store as a LlamaIndex SimpleKVStore: ``KVStore("lmdb:/var/lib/app/kv")``.

    ``persist`` flushes the store (for ``lmdb:`` there is nothing left to do:
    every write is already durable); ``persist_path`` and ``fs`` are ignored,
    since the store lives where its URI says. ``to_dict`` reads every collection.
    Pickling re-opens the same URI.
    """

    def __init__(self, uri: Any = "memory:", **options: Any) -> None:
        if isinstance(uri, str):
            self._uri: Optional[str] = uri
            self._options = options
            self._store = kvdex.open(uri, **options)
        else:  # an opened kvdex store
            self._uri, self._options, self._store = None, {}, uri

    def persist(
        self, persist_path: Optional[str] = None, fs: Optional[fsspec.AbstractFileSystem] = None
    ) -> None:
        self._store.flush()

    @classmethod
    def from_persist_path(
        cls, persist_path: str, fs: Optional[fsspec.AbstractFileSystem] = None
    ) -> "KVStore":
        """Open the store at ``persist_path`` (a URI or path, local only)."""
        if fs is not None and _stores._local_path(persist_path, fs) is None:
            raise kvdex.NotSupportedError("a store opened by URI lives on the local file system")
        return cls(persist_path)

    def to_dict(self) -> dict:
        return {name: self._store.get_all(name) for name in self._store.collections()}

    @classmethod
    def from_dict(cls, save_dict: dict) -> "KVStore":
        store = cls("memory:")
        for name, entries in save_dict.items():
            store.put_all(list(entries.items()), name, batch_size=max(1, len(entries)))
        return store

    def __getstate__(self) -> dict:
        if self._uri is None or self._store.in_memory:
            raise TypeError("only a KVStore opened from a URI of a durable store can be pickled")
        return {"uri": self._uri, "options": self._options}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["uri"], **state["options"])

    def __repr__(self) -> str:
        return f"<kvdex.llama_index.KVStore uri={self._uri!r}>"


class PostgresKVStore(KVStore):
    """LlamaIndex's PostgresKVStore, on kvdex (C++, libpq): the same constructor,
    ``from_params`` and ``from_uri``, the same table. Give it to ``KVDocumentStore``,
    ``KVIndexStore``, ``PostgresDocumentStore(postgres_kvstore=...)``,
    ``PostgresIndexStore(postgres_kvstore=...)`` or an ``IngestionPipeline``'s docstore.
    """

    def __init__(self, table_name: str = "kvstore", *args: Any, **kwargs: Any) -> None:
        store = kwargs.pop("_kvdex_store", None)
        if store is None:
            store = kvdex.PostgresKVStore(table_name, *args, **kwargs)
        super().__init__(store)

    @classmethod
    def from_params(cls, *args: Any, **kwargs: Any) -> "PostgresKVStore":
        return cls(_kvdex_store=kvdex.PostgresKVStore.from_params(*args, **kwargs))

    @classmethod
    def from_uri(cls, *args: Any, **kwargs: Any) -> "PostgresKVStore":
        return cls(_kvdex_store=kvdex.PostgresKVStore.from_uri(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        # LlamaIndex's attributes (table_name, schema_name, use_jsonb, ...).
        if name in ("connection_string", "async_connection_string", "table_name",
                    "schema_name", "perform_setup", "debug", "use_jsonb"):
            return getattr(self._store, name)
        raise AttributeError(name)

    def __getstate__(self) -> dict:
        return {"store": self._store}

    def __setstate__(self, state: dict) -> None:
        self._uri, self._options, self._store = None, {}, state["store"]

    def __repr__(self) -> str:
        return f"<kvdex.llama_index.PostgresKVStore {self._store!r}>"


class RedisKVStore(KVStore):
    """kvdex's Redis store as a LlamaIndex kvstore, with the constructor and class
    methods of LlamaIndex's ``RedisKVStore``: ``RedisKVStore(redis_uri="redis://127.0.0.1:6379")``,
    ``RedisKVStore.from_host_and_port(host, port)``, ``RedisKVStore.from_redis_client(client)``.

    Pass it wherever LlamaIndex takes a kvstore: ``KVDocumentStore(store)``,
    ``KVIndexStore(store)``, ``RedisDocumentStore(redis_kvstore=store)``,
    ``IngestionCache(cache=store)``. Same layout as LlamaIndex's (docs/redis.md), so
    data written by either is read by the other. Pickling re-opens the same URI.
    """

    def __init__(
        self,
        redis_uri: Optional[str] = "redis://127.0.0.1:6379",
        redis_client: Optional[Any] = None,
        async_redis_client: Optional[Any] = None,
        **kwargs: Any,
    ) -> None:
        store = kvdex.RedisKVStore(
            redis_uri, redis_client=redis_client, async_redis_client=async_redis_client, **kwargs
        )
        self._uri, self._options, self._store = store.redis_uri, {}, store

    @classmethod
    def from_host_and_port(cls, host: str, port: int) -> "RedisKVStore":
        return cls(redis_uri=f"redis://{host_and_port(host, port)}")

    @classmethod
    def from_redis_client(cls, redis_client: Any) -> "RedisKVStore":
        return cls(redis_client=redis_client)

    # kvdex.RedisKVStore's coroutine methods return awaitable futures (no Task per
    # call under asyncio.gather); hand them on rather than wrap them in a coroutine.
    def aput(self, key: str, val: dict, collection: str = DEFAULT_COLLECTION) -> Any:
        return self._store.aput(key, val, collection)

    def aput_all(
        self,
        kv_pairs: List[Tuple[str, dict]],
        collection: str = DEFAULT_COLLECTION,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> Any:
        return self._store.aput_all(kv_pairs, collection, batch_size)

    def aget(self, key: str, collection: str = DEFAULT_COLLECTION) -> Any:
        return self._store.aget(key, collection)

    def aget_all(self, collection: str = DEFAULT_COLLECTION) -> Any:
        return self._store.aget_all(collection)

    def adelete(self, key: str, collection: str = DEFAULT_COLLECTION) -> Any:
        return self._store.adelete(key, collection)

    def __getstate__(self) -> dict:
        return {"uri": self._uri, "options": {}}

    def __repr__(self) -> str:
        return f"<kvdex.llama_index.RedisKVStore uri={self._uri!r}>"


# ---- Document stores reading a whole collection ------------------------------------
#
# LlamaIndex's KVDocumentStore.docs and get_all_ref_doc_info call get_all and turn
# each value into a node (a RefDocInfo). On a kvdex store they take the values one
# at a time instead (iter_items): the whole decoded collection is never alive at
# once, so the cyclic GC, run by the allocations of the nodes being built, never
# walks it (docs/python.md, "Reading and keeping results": docs went from 1.26x
# LlamaIndex's time to 0.87x on 20,000 nodes). The result is the same dict, built in
# the same order.

_LLAMA_DOCS = _KVDocumentStore.__dict__["docs"]
_LLAMA_GET_ALL_REF_DOC_INFO = _KVDocumentStore.__dict__["get_all_ref_doc_info"]
_STREAMED_METHODS = ("docs", "get_all_ref_doc_info")


def _kv_docstore_method(name: str) -> Any:
    # What KVDocumentStore had before install() replaced it, or has now.
    saved = _originals.get(_KVDocumentStore)
    return saved[name] if saved is not None else _KVDocumentStore.__dict__[name]


def _items_one_at_a_time(kvstore: Any, collection: str) -> Optional[Iterable[Tuple[str, dict]]]:
    # A get_all replaced (by a subclass, or on the object) is what LlamaIndex would
    # call: it is kept.
    get_all = getattr(kvstore, "get_all", None)
    if isinstance(kvstore, _Delegating) and getattr(get_all, "__func__", None) is _Delegating.get_all:
        return kvstore.iter_items(collection)
    return None


def _docs(self: Any) -> Dict[str, Any]:
    items = _items_one_at_a_time(self._kvstore, self._node_collection)
    if items is None:
        return _kv_docstore_method("docs").fget(self)
    return {key: json_to_doc(value) for key, value in items}


def _get_all_ref_doc_info(self: Any) -> Optional[Dict[str, RefDocInfo]]:
    items = _items_one_at_a_time(self._kvstore, self._ref_doc_collection)
    if items is None:
        return _kv_docstore_method("get_all_ref_doc_info")(self)
    return {doc_id: self._remove_legacy_info(info) for doc_id, info in items}


_docs.__doc__ = _LLAMA_DOCS.__doc__
_get_all_ref_doc_info.__doc__ = _LLAMA_GET_ALL_REF_DOC_INFO.__doc__
_STREAMING_DOCS = property(_docs, doc=_LLAMA_DOCS.__doc__)


# ---- Document and index stores that build kvdex's store ----------------------------


class SimpleDocumentStore(_LlamaSimpleDocumentStore):
    """LlamaIndex's SimpleDocumentStore on a kvdex SimpleKVStore (also when loaded).

    ``docs`` and ``get_all_ref_doc_info()`` read a kvdex store one value at a time
    (the same results, without holding the whole decoded collection)."""

    docs = _STREAMING_DOCS
    get_all_ref_doc_info = _get_all_ref_doc_info

    def __init__(
        self,
        simple_kvstore: Optional[_LlamaSimpleKVStore] = None,
        namespace: Optional[str] = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        if simple_kvstore is None:
            simple_kvstore = SimpleKVStore()
        super().__init__(simple_kvstore, namespace=namespace, batch_size=batch_size)

    @classmethod
    def from_persist_path(
        cls,
        persist_path: str,
        namespace: Optional[str] = None,
        fs: Optional[fsspec.AbstractFileSystem] = None,
    ) -> "SimpleDocumentStore":
        return cls(SimpleKVStore.from_persist_path(persist_path, fs=fs), namespace)

    @classmethod
    def from_dict(cls, save_dict: dict, namespace: Optional[str] = None) -> "SimpleDocumentStore":
        return cls(SimpleKVStore.from_dict(save_dict), namespace)


class SimpleIndexStore(_LlamaSimpleIndexStore):
    """LlamaIndex's SimpleIndexStore on a kvdex SimpleKVStore (also when loaded)."""

    def __init__(self, simple_kvstore: Optional[_LlamaSimpleKVStore] = None) -> None:
        if simple_kvstore is None:
            simple_kvstore = SimpleKVStore()
        super().__init__(simple_kvstore)

    @classmethod
    def from_persist_path(
        cls, persist_path: str, fs: Optional[fsspec.AbstractFileSystem] = None
    ) -> "SimpleIndexStore":
        return cls(SimpleKVStore.from_persist_path(persist_path, fs=fs))

    @classmethod
    def from_dict(cls, save_dict: dict) -> "SimpleIndexStore":
        return cls(SimpleKVStore.from_dict(save_dict))


# ---- install(): kvdex wherever LlamaIndex builds a SimpleKVStore itself -------------

_PATCHED_MODULES = (_li_simple_docstore, _li_simple_index_store)
_originals: Dict[Any, Any] = {}


def _ingestion_cache_from_persist_path(
    cls: Any,
    persist_path: str,
    collection: str = _li_ingestion_cache.DEFAULT_CACHE_NAME,
    fs: Optional[fsspec.AbstractFileSystem] = None,
) -> Any:
    # LlamaIndex's IngestionCache.from_persist_path, loading into kvdex's store
    # (IngestionPipeline.load() rebuilds its cache through it).
    return cls(collection=collection, cache=SimpleKVStore.from_persist_path(persist_path, fs=fs))


def _set_ingestion_cache_default(factory: Any) -> None:
    # The field's default_factory was captured when pydantic built IngestionCache's
    # schema: changing it takes a forced rebuild.
    _IngestionCache.model_fields["cache"].default_factory = factory
    _IngestionCache.model_rebuild(force=True)


def install() -> None:
    """Make LlamaIndex build kvdex's SimpleKVStore wherever it builds its own:

    - SimpleDocumentStore and SimpleIndexStore: ``SimpleDocumentStore()``,
      ``.from_persist_dir()``, ``.from_dict()`` and so
      ``StorageContext.from_defaults(...)``, ``StorageContext.from_dict`` and
      ``load_index_from_storage`` (the name ``SimpleKVStore`` is rebound in those two
      LlamaIndex modules; while installed, their ``to_dict()`` accepts only kvdex
      stores, since LlamaIndex asserts the class);
    - ``IngestionCache()``'s default store (and so ``IngestionPipeline()``'s cache)
      and ``IngestionCache.from_persist_path`` (and so ``IngestionPipeline.load()``).
      A cache given a LlamaIndex SimpleKVStore explicitly still persists: kvdex's
      class is a subclass of LlamaIndex's, so ``IngestionCache.persist``'s
      ``isinstance`` check passes for both.
    - every KVDocumentStore (SimpleDocumentStore, and Redis / PostgreSQL document
      stores given a kvdex store): ``docs`` and ``get_all_ref_doc_info()`` read a
      kvdex store one value at a time, as this module's SimpleDocumentStore does
      (any other store: LlamaIndex's code, unchanged).

    :func:`uninstall` undoes it. Idempotent.
    """
    for module in _PATCHED_MODULES:
        if module not in _originals:
            _originals[module] = module.SimpleKVStore
        module.SimpleKVStore = SimpleKVStore
    if _IngestionCache not in _originals:
        _originals[_IngestionCache] = (
            _IngestionCache.__dict__["from_persist_path"],
            _IngestionCache.model_fields["cache"].default_factory,
        )
        _IngestionCache.from_persist_path = classmethod(_ingestion_cache_from_persist_path)
        _set_ingestion_cache_default(SimpleKVStore)
    if _KVDocumentStore not in _originals:
        _originals[_KVDocumentStore] = {
            name: _KVDocumentStore.__dict__[name] for name in _STREAMED_METHODS
        }
        _KVDocumentStore.docs = _STREAMING_DOCS
        _KVDocumentStore.get_all_ref_doc_info = _get_all_ref_doc_info


def uninstall() -> None:
    """Undo :func:`install`."""
    for target, original in list(_originals.items()):
        if target is _IngestionCache:
            from_persist_path, default_factory = original
            _IngestionCache.from_persist_path = from_persist_path
            _set_ingestion_cache_default(default_factory)
        elif target is _KVDocumentStore:
            for name, method in original.items():
                setattr(_KVDocumentStore, name, method)
        else:
            target.SimpleKVStore = original
        del _originals[target]
