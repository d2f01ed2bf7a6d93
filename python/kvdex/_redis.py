"""kvdex.RedisKVStore: LlamaIndex's RedisKVStore API on kvdex's C++ Redis store.

Same constructor and class methods as ``llama_index.storage.kvstore.redis.RedisKVStore``
and the same data layout (one hash per collection, field = key, value = json.dumps
text), so both read and write one Redis database interchangeably. The coroutines
(aget, aput_all, ...) are pipelined by the C++ store on a few connections driven by
its own event-loop threads; awaiting them never blocks the asyncio loop.
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, Iterable, Optional, Tuple
from urllib.parse import quote

from ._stores import DEFAULT_BATCH_SIZE, DEFAULT_COLLECTION, KVStore

__all__ = ["RedisKVStore"]

# redis-py keyword arguments with a kvdex equivalent: name -> (URI option, scale).
_REDIS_PY_OPTIONS = {
    "socket_timeout": ("command_timeout_ms", 1000),
    "socket_connect_timeout": ("connect_timeout_ms", 1000),
    "max_connections": ("pool", 1),
}
# kvdex's own URI options, accepted as keyword arguments too.
_KVDEX_OPTIONS = (
    "timeout_ms",
    "connect_timeout_ms",
    "command_timeout_ms",
    "pool",
    "async_connections",
    "retries",
    "backoff_ms",
    "scan_count",
    "cluster",
    "shards",
)


def host_and_port(host: str, port: Any) -> str:
    """``host:port`` as a URI writes it: an IPv6 address goes in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _uri_from_client(redis_client: Any) -> str:
    """The URI of a redis-py client's connection pool (host, port, db, credentials)."""
    from .exceptions import NotSupportedError

    try:
        kwargs: Dict[str, Any] = dict(redis_client.connection_pool.connection_kwargs)
    except AttributeError as e:
        raise TypeError(f"redis_client must be a redis-py client, not {type(redis_client).__name__}") from e
    if "path" in kwargs:
        raise NotSupportedError("kvdex's RedisKVStore connects over TCP; a Unix socket client is not supported")
    if "ssl" in type(redis_client.connection_pool.connection_class).__name__.lower() or kwargs.get("ssl"):
        raise NotSupportedError("rediss:// (Redis over TLS) is not supported by kvdex's RedisKVStore")
    userinfo = ""
    if kwargs.get("password"):
        user = quote(str(kwargs.get("username") or ""), safe="")
        userinfo = f"{user}:{quote(str(kwargs['password']), safe='')}@"
    address = host_and_port(kwargs.get("host", "127.0.0.1"), kwargs.get("port", 6379))
    return f"redis://{userinfo}{address}/{kwargs.get('db', 0)}"


def _with_options(uri: str, kwargs: Dict[str, Any]) -> str:
    options = []
    for name, value in kwargs.items():
        if name in _REDIS_PY_OPTIONS:
            if value is None:
                continue
            option, scale = _REDIS_PY_OPTIONS[name]
            options.append(f"{option}={max(1, int(round(float(value) * scale)))}")
        elif name in _KVDEX_OPTIONS:
            options.append(f"{name}={int(value)}")
        else:
            raise TypeError(
                f"RedisKVStore() got an unsupported keyword argument {name!r} (kvdex accepts "
                f"{', '.join(sorted([*_REDIS_PY_OPTIONS, *_KVDEX_OPTIONS]))})"
            )
    if not options:
        return uri
    return uri + ("&" if "?" in uri else "?") + "&".join(options)


class RedisKVStore(KVStore):
    """LlamaIndex's RedisKVStore, in C++: ``RedisKVStore(redis_uri="redis://127.0.0.1:6379")``.

    ``redis_uri`` takes kvdex's Redis URI (``redis://[user[:password]@]host[:port][/db]``
    with options such as ``?timeout_ms=2000&pool=8``; docs/redis.md). ``redis_client``
    (a redis-py client) is read for its host, port, db and credentials only; kvdex
    opens its own connections. A Redis Cluster: ``redis_uri="redis://host:port?cluster=1"``
    (or ``cluster=1``), with ``shards=N`` for kvdex's sharded layout (docs/redis-cluster.md;
    LlamaIndex cannot read it). Keyword arguments: kvdex's URI options, and redis-py's
    ``socket_timeout``, ``socket_connect_timeout`` (seconds) and ``max_connections``.
    """

    def __init__(
        self,
        redis_uri: Optional[str] = "redis://127.0.0.1:6379",
        redis_client: Optional[Any] = None,
        async_redis_client: Optional[Any] = None,
        **kwargs: Any,
    ) -> None:
        if redis_client is not None:
            uri = _uri_from_client(redis_client)
        elif async_redis_client is not None:
            uri = _uri_from_client(async_redis_client)
        elif redis_uri is not None:
            uri = redis_uri
        else:
            raise ValueError("Either 'redis_client' or redis_url must be provided.")
        uri = _with_options(uri, kwargs)
        super().__init__(uri)
        self.redis_uri = uri

    # The coroutine methods return the asyncio future the C++ operation settles
    # instead of wrapping it in a coroutine: ``await store.aget(k)`` is the same, but
    # ``asyncio.gather`` then needs no Task per call, which is most of the cost of
    # gathering 10,000 gets. Like LlamaIndex's, they must be called with a running loop.

    def aput(self, key: str, val: dict, collection: str = DEFAULT_COLLECTION) -> "asyncio.Future[None]":
        return self._aput(key, val, collection, asyncio.get_running_loop())

    def aput_all(
        self,
        kv_pairs: Iterable[Tuple[str, dict]],
        collection: str = DEFAULT_COLLECTION,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> "asyncio.Future[None]":
        return self._aput_all(kv_pairs, collection, batch_size, asyncio.get_running_loop())

    def aget(self, key: str, collection: str = DEFAULT_COLLECTION) -> "asyncio.Future[Optional[dict]]":
        return self._aget(key, collection, asyncio.get_running_loop())

    def aget_all(self, collection: str = DEFAULT_COLLECTION) -> "asyncio.Future[Dict[str, dict]]":
        return self._aget_all(collection, asyncio.get_running_loop())

    def adelete(self, key: str, collection: str = DEFAULT_COLLECTION) -> "asyncio.Future[bool]":
        return self._adelete(key, collection, asyncio.get_running_loop())

    @classmethod
    def from_host_and_port(cls, host: str, port: int) -> "RedisKVStore":
        """A store on the Redis at ``host:port`` (database 0)."""
        return cls(redis_uri=f"redis://{host_and_port(host, port)}")

    @classmethod
    def from_redis_client(cls, redis_client: Any) -> "RedisKVStore":
        """A store on the server a redis-py client points at."""
        return cls(redis_client=redis_client)

    def __reduce__(self):
        return (type(self), (self.redis_uri,))

    def __repr__(self) -> str:
        if self.closed:
            return "<kvdex.RedisKVStore closed>"
        return f"<kvdex.RedisKVStore uri={self.redis_uri!r}>"
