"""kvdex.PostgresKVStore: LlamaIndex's PostgreSQL key-value table, in C++ (libpq).

The constructor and class methods take LlamaIndex's arguments
(``llama_index.storage.kvstore.postgres.PostgresKVStore``), so code written for it
changes only its import. Both read and write the same table,
``{schema_name}.data_{table_name}``.

Connection strings: libpq's ``postgresql://`` / ``postgres://`` URIs (SQLAlchemy's
``postgresql+psycopg2://`` and ``postgresql+asyncpg://`` are accepted: the driver
part is dropped) or libpq's ``key=value`` strings. ``async_connection_string`` is
accepted and not needed: the asynchronous methods run on the same server through
kvdex's own non-blocking connections.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any, Dict, Optional

from ._stores import KVStore

__all__ = ["PostgresKVStore", "postgres_uri"]

_DRIVER = re.compile(r"^(postgresql|postgres)\+[A-Za-z0-9_]+://")
_KEYWORD_VALUE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*('(?:[^'\\]|\\.)*'|[^\s']*)")


def _conninfo_params(conninfo: str) -> Dict[str, str]:
    """libpq's ``key=value`` syntax (values may be single-quoted, \\ escapes)."""
    params: Dict[str, str] = {}
    pos = 0
    while pos < len(conninfo):
        if conninfo[pos:].strip() == "":
            break
        m = _KEYWORD_VALUE.match(conninfo, pos)
        if not m:
            raise ValueError(f"invalid PostgreSQL connection string near {conninfo[pos:]!r}")
        value = m.group(2)
        if value.startswith("'"):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params[m.group(1)] = value
        pos = m.end()
    return params


def postgres_uri(
    connection_string: str,
    table_name: str = "kvstore",
    schema_name: str = "public",
    perform_setup: bool = True,
    use_jsonb: bool = False,
    **options: Any,
) -> str:
    """The ``postgresql://`` URI kvdex.open takes for these LlamaIndex arguments.

    ``table_name`` and ``schema_name`` are lower-cased with ``str.lower()``, as
    LlamaIndex does. Extra ``options`` (``pool``, ``statement_timeout`` in ms,
    ``connect_retries``, ``event_loop_threads``, ``async_connections``) become kvdex
    URI options.
    """
    if not isinstance(connection_string, str) or not connection_string:
        raise ValueError("a PostgreSQL connection string is required")
    kvdex_options = {
        "table_name": table_name.lower(),
        "schema_name": schema_name.lower(),
        "perform_setup": "true" if perform_setup else "false",
        "use_jsonb": "true" if use_jsonb else "false",
    }
    for name, value in options.items():
        kvdex_options[name] = str(value).lower() if isinstance(value, bool) else str(value)
    uri = _DRIVER.sub(r"\1://", connection_string)
    if uri.startswith(("postgresql://", "postgres://")):
        separator = "&" if "?" in uri else "?"
        return uri + separator + urllib.parse.urlencode(kvdex_options, quote_via=urllib.parse.quote)
    # key=value: every parameter goes into the URI's query, as libpq reads it.
    params = _conninfo_params(connection_string)
    params.update(kvdex_options)
    return "postgresql://?" + urllib.parse.urlencode(params, quote_via=urllib.parse.quote)


class PostgresKVStore(KVStore):
    """LlamaIndex's PostgresKVStore, on kvdex's C++ store (libpq, pipeline mode).

    ``engine`` / ``async_engine`` (SQLAlchemy engines) and ``create_engine_kwargs``
    have no meaning here: an engine is refused, the keyword arguments ignored.
    ``debug`` is accepted and ignored. kvdex's own options (``pool``,
    ``statement_timeout`` in milliseconds, ...) may be given as keyword arguments.
    """

    def __init__(
        self,
        table_name: str = "kvstore",
        connection_string: Optional[str] = None,
        async_connection_string: Optional[str] = None,
        schema_name: str = "public",
        create_engine_kwargs: Optional[Dict[str, Any]] = None,
        engine: Any = None,
        async_engine: Any = None,
        perform_setup: bool = True,
        debug: bool = False,
        use_jsonb: bool = False,
        **kvdex_options: Any,
    ) -> None:
        if engine is not None or async_engine is not None:
            raise TypeError(
                "kvdex.PostgresKVStore connects by itself (libpq): pass connection_string, "
                "not a SQLAlchemy engine"
            )
        if not connection_string:
            connection_string = async_connection_string
        if not connection_string:
            raise ValueError("You should provide a connection string (connection_string)")
        self.connection_string = connection_string
        self.async_connection_string = async_connection_string
        self.table_name = table_name.lower()
        self.schema_name = schema_name.lower()
        self.perform_setup = perform_setup
        self.debug = debug
        self.use_jsonb = use_jsonb
        self.create_engine_kwargs = create_engine_kwargs or {}
        self._kvdex_options = dict(kvdex_options)
        uri = postgres_uri(
            connection_string, table_name, schema_name, perform_setup, use_jsonb, **kvdex_options
        )
        super().__init__(uri)

    @classmethod
    def from_params(
        cls,
        host: Optional[str] = None,
        port: Optional[str] = None,
        database: Optional[str] = None,
        user: Optional[str] = None,
        password: Optional[str] = None,
        table_name: str = "kvstore",
        schema_name: str = "public",
        connection_string: Optional[str] = None,
        async_connection_string: Optional[str] = None,
        perform_setup: bool = True,
        debug: bool = False,
        use_jsonb: bool = False,
        create_engine_kwargs: Optional[Dict[str, Any]] = None,
        **kvdex_options: Any,
    ) -> "PostgresKVStore":
        """As LlamaIndex's: a store from host, port, database, user and password."""
        if not connection_string:
            q = urllib.parse.quote
            credentials = q(user or "", safe="") + (
                ":" + q(password, safe="") if password is not None else ""
            )
            connection_string = (
                f"postgresql://{credentials}@{host or ''}:{port or 5432}/{q(database or '', safe='')}"
            )
        return cls(
            table_name=table_name,
            connection_string=connection_string,
            async_connection_string=async_connection_string,
            schema_name=schema_name,
            create_engine_kwargs=create_engine_kwargs,
            perform_setup=perform_setup,
            debug=debug,
            use_jsonb=use_jsonb,
            **kvdex_options,
        )

    @classmethod
    def from_uri(
        cls,
        uri: str,
        table_name: str = "kvstore",
        schema_name: str = "public",
        perform_setup: bool = True,
        debug: bool = False,
        use_jsonb: bool = False,
        create_engine_kwargs: Optional[Dict[str, Any]] = None,
        **kvdex_options: Any,
    ) -> "PostgresKVStore":
        """As LlamaIndex's: a store from a ``postgresql://user:password@host:port/db`` URI."""
        return cls(
            table_name=table_name,
            connection_string=uri,
            schema_name=schema_name,
            create_engine_kwargs=create_engine_kwargs,
            perform_setup=perform_setup,
            debug=debug,
            use_jsonb=use_jsonb,
            **kvdex_options,
        )

    def __reduce__(self):
        return (
            _reopen,
            (
                type(self),
                {
                    "table_name": self.table_name,
                    "connection_string": self.connection_string,
                    "async_connection_string": self.async_connection_string,
                    "schema_name": self.schema_name,
                    "perform_setup": self.perform_setup,
                    "use_jsonb": self.use_jsonb,
                    **self._kvdex_options,
                },
            ),
        )

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        return (
            f"<kvdex.PostgresKVStore{state} table={self.schema_name}.data_{self.table_name}"
            f" jsonb={self.use_jsonb}>"
        )


def _reopen(cls: type, kwargs: dict) -> PostgresKVStore:
    return cls(**kwargs)
