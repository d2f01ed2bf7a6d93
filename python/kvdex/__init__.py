"""kvdex: LlamaIndex's key-value store layer in C++.

    import kvdex
    store = kvdex.SimpleKVStore()
    store.put("node-1", {"text": "hello"}, collection="docstore/data")
    store.get("node-1", collection="docstore/data")      # -> {'text': 'hello'}
    store.persist("storage/docstore.json")               # the same bytes LlamaIndex writes

For LlamaIndex itself, use the drop-in classes of ``kvdex.llama_index`` (that
module imports llama-index-core; this one needs only the standard library).
"""

from . import _native
from .exceptions import (
    AlreadyExistsError,
    CorruptionError,
    DeadlineExceededError,
    Error,
    FailedPreconditionError,
    InternalError,
    InvalidArgumentError,
    KvdexIOError,
    NotFoundError,
    NotSupportedError,
    OutOfRangeError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnavailableError,
)
from .exceptions import BY_CODE as _BY_CODE

_native._register_exceptions(_BY_CODE)

from ._stores import DEFAULT_BATCH_SIZE, DEFAULT_COLLECTION, KVStore, SimpleKVStore, open  # noqa: E402

from ._postgres import PostgresKVStore  # noqa: E402

HAVE_LMDB = bool(_native.HAVE_LMDB)
if HAVE_LMDB:
    from ._stores import LmdbKVStore  # noqa: E402,F401

from ._redis import RedisKVStore  # noqa: E402

__version__ = _native.__version__

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_COLLECTION",
    "HAVE_LMDB",
    "CorruptionError",
    "Error",
    "InternalError",
    "InvalidArgumentError",
    "KVStore",
    "KvdexIOError",
    "NotFoundError",
    "NotSupportedError",
    "OutOfRangeError",
    "PostgresKVStore",
    "RedisKVStore",
    "SimpleKVStore",
    "UnavailableError",
    "open",
] + (["LmdbKVStore"] if HAVE_LMDB else [])
