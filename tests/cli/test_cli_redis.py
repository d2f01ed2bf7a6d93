"""The `kvdex` executable on redis:// URIs, against a real redis-server (the fixture
of python/tests/_redis_server.py): copy a LlamaIndex docstore.json into Redis and
back, value for value; stats, keys and get; an unreachable server's exit status."""
import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python" / "tests"))
from _redis_server import redis_server  # noqa: E402,F401 - the fixture

KVDEX = os.environ.get("KVDEX_CLI", str(ROOT / "build" / "default" / "tools" / "kvdex"))
LLAMA_DOCSTORE = ROOT / "python" / "tests" / "data" / "llamaindex_persist" / "docstore.json"


def kvdex(*args, check=0):
    proc = subprocess.run([KVDEX, *map(str, args)], capture_output=True, text=True)
    assert proc.returncode == check, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def test_copy_a_llamaindex_docstore_into_redis_and_back(redis_server, tmp_path):  # noqa: F811
    uri = redis_server.uri + "/3"
    kvdex("copy", LLAMA_DOCSTORE, uri)
    original = json.loads(LLAMA_DOCSTORE.read_text())
    raw = redis_server.client()
    raw.execute_command("SELECT", 3)
    for collection, entries in original.items():
        # LlamaIndex's layout: a hash per collection holding json.dumps text.
        stored = raw.hgetall(collection)
        assert {k.decode(): v.decode() for k, v in stored.items()} == {
            k: json.dumps(v) for k, v in entries.items()
        }
    back = tmp_path / "back.json"
    kvdex("copy", uri, back)
    # Value for value; a Redis hash keeps no insertion order (docs/redis.md).
    assert json.loads(back.read_text()) == original


def test_stats_keys_get_on_redis(redis_server):  # noqa: F811
    uri = redis_server.uri + "/4"
    kvdex("copy", LLAMA_DOCSTORE, uri)
    original = json.loads(LLAMA_DOCSTORE.read_text())
    stats = kvdex("stats", uri).stdout
    total = sum(len(v) for v in original.values())
    assert f"{len(original)} collections, {total} keys" in stats
    keys = kvdex("keys", uri, "-c", "docstore/data").stdout.split()
    assert sorted(keys) == sorted(original["docstore/data"])
    got = kvdex("get", uri, keys[0], "-c", "docstore/data").stdout
    assert json.loads(got) == original["docstore/data"][keys[0]]
    kvdex("get", uri, "no-such-key", "-c", "docstore/data", check=1)


def test_an_unreachable_server_is_exit_5_naming_it(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = kvdex("stats", f"redis://127.0.0.1:{port}?retries=0", check=5)
    assert f"127.0.0.1:{port}" in proc.stderr
    proc = kvdex("get", f"rediss://127.0.0.1:{port}", "k", check=6)
    assert "TLS" in proc.stderr


def test_a_layout_mismatch_is_exit_8_naming_the_collection(redis_server):  # noqa: F811
    """Exit 8 (the store's state does not allow the operation): a collection written
    in kvdex's sharded layout, read as LlamaIndex's plain layout, and the reverse."""
    sharded = redis_server.uri + "/5?shards=2"
    plain = redis_server.uri + "/5"
    kvdex("put", sharded, "k", '{"v": 1}', "-c", "spread")
    proc = kvdex("get", plain, "k", "-c", "spread", check=8)
    assert "spread" in proc.stderr and "shard" in proc.stderr, proc.stderr
    assert json.loads(kvdex("get", sharded, "k", "-c", "spread").stdout) == {"v": 1}
    kvdex("put", plain, "k", '{"v": 2}', "-c", "flat")
    proc = kvdex("get", sharded, "k", "-c", "flat", check=8)
    assert "flat" in proc.stderr, proc.stderr
