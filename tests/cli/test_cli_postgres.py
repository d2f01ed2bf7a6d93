"""The kvdex CLI on postgresql:// URIs, against a server the session starts
(python/tests/pg_server.py): copy a LlamaIndex docstore.json in and back
byte-identical (json column, rows in id order), stats/keys/get, clear errors."""
import json
import pathlib
import sys

from test_cli import DOCSTORE_COLLECTIONS, LLAMA_PERSIST, kvdex

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "python" / "tests"))
from pg_server import postgres_server  # noqa: E402,F401 - the session fixture


def test_copy_docstore_into_postgres_and_back_byte_identical(postgres_server, tmp_path):  # noqa: F811
    uri = postgres_server.uri() + "?table_name=cli_copy"
    kvdex("copy", LLAMA_PERSIST / "docstore.json", uri, check=0)
    assert postgres_server.psql("SELECT count(*) FROM public.data_cli_copy") != "0"
    listed = kvdex("collections", uri, check=0).stdout.splitlines()
    assert [line.split("\t")[0] for line in listed] == DOCSTORE_COLLECTIONS
    original = json.loads((LLAMA_PERSIST / "docstore.json").read_text())
    node_id = next(iter(original["docstore/data"]))
    got = kvdex("get", uri, node_id, "-c", "docstore/data", check=0).stdout
    assert json.loads(got) == original["docstore/data"][node_id]
    keys = kvdex("keys", uri, "-c", "docstore/data", check=0).stdout.splitlines()
    assert keys == list(original["docstore/data"])
    stats = kvdex("stats", uri, check=0).stdout
    assert "docstore/data" in stats
    out = tmp_path / "back" / "docstore.json"
    kvdex("copy", uri, out, *sum((["-c", c] for c in DOCSTORE_COLLECTIONS), []), check=0)
    assert out.read_bytes() == (LLAMA_PERSIST / "docstore.json").read_bytes()
    # And through the jsonb layout: equal values, PostgreSQL's key order.
    jsonb = postgres_server.uri() + "?table_name=cli_jsonb&use_jsonb=true"
    kvdex("copy", LLAMA_PERSIST / "docstore.json", jsonb, check=0)
    back = tmp_path / "jsonb.json"
    kvdex("copy", jsonb, back, *sum((["-c", c] for c in DOCSTORE_COLLECTIONS), []), check=0)
    assert json.loads(back.read_text()) == original


def test_postgres_errors_are_clear(postgres_server):  # noqa: F811
    missing = postgres_server.uri() + "?table_name=never_made"
    proc = kvdex("get", missing, "k")
    # A store that does not exist: exit 4, as for a missing file.
    assert proc.returncode == 4 and "data_never_made" in proc.stderr, proc.stderr
    down = "postgresql://postgres@127.0.0.1:1/postgres?connect_retries=0"
    proc = kvdex("keys", down)
    assert proc.returncode == 5 and "127.0.0.1:1" in proc.stderr, proc.stderr
    bad = postgres_server.uri() + "?use_jsonb=perhaps"
    proc = kvdex("keys", bad, check=2)
    assert "use_jsonb" in proc.stderr


def test_cli_reads_a_docstore_llamaindex_wrote(postgres_server, tmp_path):  # noqa: F811
    """The C++ side (through the CLI) reads a whole LlamaIndex-written docstore."""
    from llama_index.core import Document
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.storage.docstore.keyval_docstore import KVDocumentStore
    from llama_index.storage.kvstore.postgres import PostgresKVStore

    theirs = PostgresKVStore(table_name="cli_from_llamaindex",
                             connection_string=postgres_server.uri("psycopg2"),
                             async_connection_string=postgres_server.uri("asyncpg"))
    docs = [Document(text=f"document {i} é " * 40, id_=f"doc-{i}", metadata={"i": i})
            for i in range(10)]
    KVDocumentStore(theirs).add_documents(
        SentenceSplitter(chunk_size=96, chunk_overlap=0).get_nodes_from_documents(docs))
    uri = postgres_server.uri() + "?table_name=cli_from_llamaindex"
    out = tmp_path / "from_llamaindex.json"
    kvdex("copy", uri, out, check=0)
    copied = json.loads(out.read_text())
    assert set(copied) == {"docstore/data", "docstore/metadata", "docstore/ref_doc_info"}
    for collection, entries in copied.items():
        assert entries == theirs.get_all(collection)
        by_id = postgres_server.psql("SELECT key FROM public.data_cli_from_llamaindex WHERE "
                                     f"namespace = '{collection}' ORDER BY id")
        assert list(entries) == by_id.split("\n")
