"""The Python side of the benchmark: one implementation, one workload, one process.

    python bench/bench_python.py --impl {llamaindex,kvdex,kvdex-llamaindex} \
        --workload-file A.json --workload A [--mode store|load|docstore|docstore-load|lmdb]
    python bench/bench_python.py --impl kvdex-lmdb --mode docstore-load \
        --docstore-file DOCSTORE.json --workload-file A.json --workload A
    python bench/bench_python.py --impl llamaindex|kvdex --mode redis \
    python bench/bench_python.py --impl llamaindex --mode postgres \
        --workload-file A.json --workload A [--put-limit L --sample S --delete-sample D]

The redis and postgres modes measure LlamaIndex's RedisKVStore and PostgresKVStore on
the servers scripts/servers.sh starts, on the same data and key samples' sizes as
kvdex_bench's raw-redis and raw-postgres modes.

Prints one JSON object per measurement, in the same shape as kvdex_bench.
"""
import argparse
import asyncio
import gc
import json
import os
import random
import tempfile
import time


def peak_rss_mb() -> float:
    # VmHWM, not ru_maxrss: ru_maxrss survives exec, so it would report the driver's peak.
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1024.0 * 1024.0)


class Emitter:
    def __init__(self, impl: str, store: str, workload: str):
        self.impl, self.store, self.workload = impl, store, workload

    def emit(self, op, n, seconds, nbytes=0.0, rss_mb=None, **extra):
        row = {"impl": self.impl, "store": self.store, "workload": self.workload, "op": op, "n": n,
               "seconds": round(seconds, 6), "bytes": nbytes,
               "rss_mb": round(peak_rss_mb() if rss_mb is None else rss_mb, 1)}
        row.update(extra)
        print(json.dumps(row), flush=True)


def store_class(impl: str):
    if impl == "llamaindex":
        from llama_index.core.storage.kvstore import SimpleKVStore
        return SimpleKVStore
    if impl == "kvdex":
        import kvdex
        return kvdex.SimpleKVStore
    if impl == "kvdex-llamaindex":
        from kvdex.llama_index import SimpleKVStore
        return SimpleKVStore
    raise SystemExit(f"unknown impl {impl}")


def docstore_class(impl: str):
    """The SimpleDocumentStore a user of this implementation builds: kvdex's reads a
    kvdex store's whole collections one value at a time (docs, get_all_ref_doc_info),
    as every docstore does after kvdex.llama_index.install()."""
    if impl.startswith("kvdex"):
        from kvdex.llama_index import SimpleDocumentStore
    else:
        from llama_index.core.storage.docstore import SimpleDocumentStore
    return SimpleDocumentStore


def read_workload(path: str):
    with open(path, "rb") as f:
        data = json.load(f)
    (collection, mapping), = data.items()
    return collection, list(mapping.items())


def timed_reads(store, collection, pairs, order, nbytes, out: Emitter):
    """get of every key in `order`, get_all, and 10,000 aget calls under one
    asyncio.gather: the read rows every in-process store reports."""
    # Each read twice: its result dropped at once (freed inside the timing), and its
    # results kept alive until the clock stops, as a program that reads to use does
    # ("..., kept"): kept containers stay in the cyclic GC's generations and are
    # traversed by every collection the next allocations trigger. Between the rows a
    # full collection, outside the timing, so each starts from the same heap.
    t = time.perf_counter()
    for i in order:
        store.get(pairs[i][0], collection=collection)
    out.emit("get", len(order), time.perf_counter() - t, nbytes)

    gc.collect()
    t = time.perf_counter()
    kept = [store.get(pairs[i][0], collection=collection) for i in order]
    out.emit("get, kept", len(kept), time.perf_counter() - t, nbytes)
    del kept

    gc.collect()
    t = time.perf_counter()
    count = len(store.get_all(collection=collection))
    out.emit("get_all", count, time.perf_counter() - t, nbytes)

    gc.collect()
    t = time.perf_counter()
    everything = store.get_all(collection=collection)
    out.emit("get_all, kept", len(everything), time.perf_counter() - t, nbytes)
    del everything
    gc.collect()

    async def gather_gets():
        keys = [pairs[i][0] for i in order[:10000]]
        t0 = time.perf_counter()
        results = await asyncio.gather(*(store.aget(k, collection=collection) for k in keys))
        return len(results), time.perf_counter() - t0

    count, seconds = asyncio.run(gather_gets())
    out.emit("aget x gather", count, seconds, 0)


def bench_store(args, out: Emitter):
    cls = store_class(args.impl)
    collection, pairs = read_workload(args.workload_file)
    nbytes = os.path.getsize(args.workload_file)
    n = len(pairs)
    store = cls()
    t = time.perf_counter()
    for k, v in pairs:
        store.put(k, v, collection=collection)
    out.emit("put", n, time.perf_counter() - t, nbytes)

    order = list(range(n))
    random.Random(42).shuffle(order)
    timed_reads(store, collection, pairs, order, nbytes, out)

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "kv.json")
        t = time.perf_counter()
        store.persist(path)
        out.emit("persist", n, time.perf_counter() - t, os.path.getsize(path))

    t = time.perf_counter()
    for k, _ in pairs:
        store.delete(k, collection=collection)
    out.emit("remove", n, time.perf_counter() - t, nbytes)

    # LlamaIndex's SimpleKVStore only accepts batch_size=1; kvdex takes 1,000.
    batch = 1 if args.impl == "llamaindex" else 1000
    store = cls()
    t = time.perf_counter()
    store.put_all(pairs, collection=collection, batch_size=batch)
    out.emit(f"put_all({batch})", n, time.perf_counter() - t, nbytes)


def bench_lmdb(args, out: Emitter):
    """kvdex.LmdbKVStore from Python, the operations kvdex_bench's lmdb rows measure.
    Single puts and removes commit (and fsync) each, so they run on the first
    --max-single-writes keys; the rest is loaded in batches, untimed."""
    import kvdex
    collection, pairs = read_workload(args.workload_file)
    nbytes = os.path.getsize(args.workload_file)
    n = len(pairs)
    single = min(n, args.max_single_writes)
    order = list(range(n))
    random.Random(42).shuffle(order)
    with tempfile.TemporaryDirectory(dir=args.tmp_dir) as tmp:
        store = kvdex.LmdbKVStore(os.path.join(tmp, "store"))
        t = time.perf_counter()
        for k, v in pairs[:single]:
            store.put(k, v, collection=collection)
        out.emit("put", single, time.perf_counter() - t, nbytes * single / max(n, 1))
        store.put_all(pairs[single:], collection=collection, batch_size=1000)
        timed_reads(store, collection, pairs, order, nbytes, out)

        t = time.perf_counter()
        for k, _ in pairs[:single]:
            store.delete(k, collection=collection)
        out.emit("remove", single, time.perf_counter() - t, 0)
        del store

        fresh = kvdex.LmdbKVStore(os.path.join(tmp, "fresh"))
        t = time.perf_counter()
        fresh.put_all(pairs, collection=collection, batch_size=1000)
        out.emit("put_all(1000)", n, time.perf_counter() - t, nbytes)


def bench_load(args, out: Emitter):
    cls = store_class(args.impl)
    nbytes = os.path.getsize(args.workload_file)
    before = current_rss_mb()
    t = time.perf_counter()
    store = cls.from_persist_path(args.workload_file)
    elapsed = time.perf_counter() - t
    out.emit("load", 0, elapsed, nbytes, peak_rss_mb())
    out.emit("resident", 0, 0, nbytes, current_rss_mb() - before)
    del store


def bench_docstore(args, out: Emitter):
    """LlamaIndex's SimpleDocumentStore on each kvstore, where users feel it. Writes
    the persisted docstore to --docstore-file for the docstore-load mode."""
    from llama_index.core.storage.docstore.utils import json_to_doc

    collection, pairs = read_workload(args.workload_file)
    nodes = [json_to_doc(v) for _, v in pairs]
    n = len(nodes)
    docstore = docstore_class(args.impl)(simple_kvstore=store_class(args.impl)())
    t = time.perf_counter()
    docstore.add_documents(nodes)
    out.emit("docstore.add_documents", n, time.perf_counter() - t)
    t = time.perf_counter()
    docstore.persist(args.docstore_file)
    out.emit("docstore.persist", n, time.perf_counter() - t, os.path.getsize(args.docstore_file))


def median_of_passes(out: Emitter, op: str, count: int, run, passes: int = 3):
    """`run()` timed `passes` times, the median reported (the machines here are shared,
    and single passes move by 20%). What it returns is kept until its pass's clock
    stops, then dropped, and a full collection runs, outside the timing."""
    seconds = []
    for _ in range(passes):
        gc.collect()
        t = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - t)
        del result
    gc.collect()
    out.emit(op, count, sorted(seconds)[len(seconds) // 2], passes=[round(p, 4) for p in seconds])


def copy_to_lmdb(path: str, uri: str) -> None:
    import kvdex

    source = kvdex.SimpleKVStore.from_persist_path(path)
    with kvdex.open(uri) as target:
        for name in source.collections():
            target.put_all(list(source.get_all(name).items()), collection=name, batch_size=1000)
    source.close()


def lmdb_docstore(path: str, tmp: str):
    """A SimpleDocumentStore over kvdex's LMDB store holding what the persisted
    docstore at `path` holds. The copy is made in another process, so the one that
    measures starts with a heap as small as the in-memory rows' processes."""
    import multiprocessing

    from kvdex.llama_index import KVStore, SimpleDocumentStore

    uri = f"lmdb:{os.path.join(tmp, 'docstore')}"
    copier = multiprocessing.get_context("spawn").Process(target=copy_to_lmdb, args=(path, uri))
    copier.start()
    copier.join()
    if copier.exitcode != 0:
        raise SystemExit(f"copying {path} into {uri} failed ({copier.exitcode})")
    return SimpleDocumentStore(simple_kvstore=KVStore(uri))


def bench_docstore_load(args, out: Emitter):
    """A fresh process: load the persisted docstore, then read every node: get_node
    (discarded and kept), get_nodes, docs and get_all_ref_doc_info (kept). --impl
    kvdex-lmdb reads a copy of the docstore in kvdex's LMDB store (no load rows)."""
    path = args.docstore_file
    with tempfile.TemporaryDirectory(dir=args.tmp_dir) as tmp:
        if args.impl == "kvdex-lmdb":
            out.impl, out.store = "kvdex-llamaindex-py", "lmdb"
            loaded = lmdb_docstore(path, tmp)
        else:
            before = current_rss_mb()
            t = time.perf_counter()
            if args.impl == "llamaindex":
                loaded = docstore_class(args.impl).from_persist_path(path)
            else:
                loaded = docstore_class(args.impl)(
                    simple_kvstore=store_class(args.impl).from_persist_path(path))
            out.emit("docstore.load", 0, time.perf_counter() - t, os.path.getsize(path))
            out.emit("docstore.resident", 0, 0, os.path.getsize(path), current_rss_mb() - before)
        # The node ids come from the workload file, the same way for both implementations,
        # and the whole file is read before the timed passes so neither pays for it inside.
        _, pairs = read_workload(args.workload_file)
        ids = [key for key, _ in pairs]
        del pairs
        random.Random(42).shuffle(ids)

        def get_node_each():
            for node_id in ids:
                loaded.get_node(node_id)

        median_of_passes(out, "docstore.get_node", len(ids), get_node_each)
        median_of_passes(out, "docstore.get_node, kept", len(ids),
                         lambda: [loaded.get_node(node_id) for node_id in ids])
        median_of_passes(out, "docstore.get_nodes, kept", len(ids), lambda: loaded.get_nodes(ids))
        median_of_passes(out, "docstore.docs, kept", len(ids), lambda: loaded.docs)
        refs = loaded.get_all_ref_doc_info() or {}
        median_of_passes(out, "docstore.ref_doc_info, kept", len(refs), loaded.get_all_ref_doc_info)
        del loaded


def read_server_workload(args):
    """The pairs (a prefix of at most --put-limit), --sample indexes in random order for
    the gets and the first --delete-sample of those for the deletes (see kvdex_bench)."""
    collection, pairs = read_workload(args.workload_file)
    if args.put_limit > 0:
        pairs = pairs[: args.put_limit]
    order = list(range(len(pairs)))
    random.Random(42).shuffle(order)
    sample = order[: args.sample] if args.sample > 0 else order
    deletes = sample[: args.delete_sample] if args.delete_sample > 0 else sample
    return collection, pairs, order, sample, deletes


def payload_bytes(pairs) -> int:
    # The same figure kvdex_bench reports: key plus JSON text of every pair.
    return sum(len(k.encode()) + len(json.dumps(v).encode()) for k, v in pairs)


def timed_server_ops(out: Emitter, store, collection, pairs, sample, deletes):
    """put_all, get, get_all and delete: the rows every server row set has."""
    nbytes = payload_bytes(pairs)
    # The first call connects (and PostgresKVStore creates its table): not put_all's cost.
    store.get("kvdex-bench-warm-up", collection=collection)
    t = time.perf_counter()
    store.put_all(pairs, collection=collection, batch_size=1000)
    out.emit("put_all(1000)", len(pairs), time.perf_counter() - t, nbytes)

    t = time.perf_counter()
    found = sum(store.get(pairs[i][0], collection=collection) is not None for i in sample)
    out.emit("get", found, time.perf_counter() - t)
    if found != len(sample):
        raise SystemExit(f"{out.store} get found {found} of {len(sample)} keys")

    t = time.perf_counter()
    everything = store.get_all(collection=collection)
    out.emit("get_all", len(everything), time.perf_counter() - t, nbytes)
    if len(everything) != len(pairs):
        raise SystemExit(f"{out.store} get_all returned {len(everything)} of {len(pairs)} pairs")
    del everything

    t = time.perf_counter()
    removed = sum(bool(store.delete(pairs[i][0], collection=collection)) for i in deletes)
    out.emit("remove", removed, time.perf_counter() - t)


def bench_redis(args, out: Emitter):
    """LlamaIndex's RedisKVStore on the Redis of scripts/servers.sh."""
    import redis
    from llama_index.storage.kvstore.redis import RedisKVStore

    collection, pairs, order, sample, deletes = read_server_workload(args)
    url = f"redis://{args.redis_host}:{args.redis_port}/0"
    admin = redis.Redis.from_url(url)
    try:
        admin.ping()
    except redis.exceptions.ConnectionError as e:
        raise SystemExit(f"cannot connect to Redis at {args.redis_host}:{args.redis_port}: {e} "
                         "(start it with scripts/servers.sh start redis)")
    admin.delete(collection)
    if args.impl == "kvdex":
        import kvdex

        store = kvdex.RedisKVStore(redis_uri=url)
    else:
        store = RedisKVStore(redis_uri=url)
    timed_server_ops(out, store, collection, pairs, sample, deletes)

    # asyncio.gather of 10,000 aget calls: LlamaIndex's async client takes a pooled
    # connection per pending command, so Redis sees how many connections it opened.
    store.put_all([pairs[i] for i in deletes], collection=collection, batch_size=1000)  # deleted keys back
    keys = [pairs[i][0] for i in order[: min(len(pairs), 10000)]]

    async def gather_gets():
        before = admin.info("stats")["total_connections_received"]
        t0 = time.perf_counter()
        results = await asyncio.gather(*(store.aget(k, collection=collection) for k in keys))
        seconds = time.perf_counter() - t0
        opened = admin.info("stats")["total_connections_received"] - before
        connected = admin.info("clients")["connected_clients"]
        # LlamaIndex's RedisKVStore has no close(); its pooled connections would
        # outlive the loop. kvdex's async connections belong to its own loop threads.
        if args.impl != "kvdex":
            await store._async_redis_client.aclose()
        return results, seconds, opened, connected

    results, seconds, opened, connected = asyncio.run(gather_gets())
    if sum(r is not None for r in results) != len(keys):
        raise SystemExit("redis aget x gather missed keys")
    out.emit("aget x gather", len(keys), seconds, 0, connections_opened=opened,
             connected_clients_after=connected)
    admin.delete(collection)


def bench_postgres(args, out: Emitter):
    """LlamaIndex's PostgresKVStore (its default table public.data_kvstore, json values)
    on the PostgreSQL of scripts/servers.sh, starting from no table, as raw-postgres."""
    import psycopg2
    from llama_index.storage.kvstore.postgres import PostgresKVStore

    collection, pairs, _, sample, deletes = read_server_workload(args)
    try:
        admin = psycopg2.connect(host=args.pg_host, port=args.pg_port, dbname=args.pg_database,
                                 user=args.pg_user)
    except psycopg2.OperationalError as e:
        raise SystemExit(f"cannot connect to PostgreSQL at {args.pg_host}:{args.pg_port} "
                         f"(database {args.pg_database}): {str(e).strip()} "
                         "(start it with scripts/servers.sh start postgres)")
    admin.autocommit = True

    def drop_table():
        with admin.cursor() as cur:
            cur.execute("SET client_min_messages = warning")
            cur.execute("DROP TABLE IF EXISTS public.data_kvstore")

    drop_table()
    if args.impl == "kvdex":  # kvdex.PostgresKVStore: the same constructor, same table
        import kvdex

        PostgresKVStore = kvdex.PostgresKVStore  # noqa: N806
    # The servers trust loopback connections: the password is not checked.
    store = PostgresKVStore.from_params(host=args.pg_host, port=str(args.pg_port),
                                        database=args.pg_database, user=args.pg_user,
                                        password="kvdex", table_name="kvstore")
    timed_server_ops(out, store, collection, pairs, sample, deletes)
    if args.impl == "kvdex":
        # Every sampled key at once through aget, gathered: kvdex pipelines them on its
        # event loops' connections.
        async def gather_gets():
            return await asyncio.gather(*(store.aget(pairs[i][0], collection=collection)
                                          for i in sample))

        t = time.perf_counter()
        found = sum(v is not None for v in asyncio.run(gather_gets()))
        out.emit("get(gathered aget)", found, time.perf_counter() - t)
        store.close()
    else:
        store._engine.dispose()  # no close() either; the table is dropped next
    drop_table()
    admin.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", required=True)
    parser.add_argument("--workload-file", required=True)
    parser.add_argument("--workload", required=True)
    parser.add_argument("--mode", default="store",
                        choices=["store", "load", "docstore", "docstore-load", "lmdb", "redis", "postgres"])
    parser.add_argument("--max-single-writes", type=int, default=3000,
                        help="lmdb: single puts/removes (an fsync each) on this many keys")
    parser.add_argument("--tmp-dir", default=None, help="lmdb, kvdex-lmdb: where the stores go")
    parser.add_argument("--docstore-file", default="")
    parser.add_argument("--put-limit", type=int, default=0, help="redis/postgres: at most this many pairs")
    parser.add_argument("--sample", type=int, default=0, help="redis/postgres: keys for the gets")
    parser.add_argument("--delete-sample", type=int, default=0, help="redis/postgres: keys for the deletes")
    parser.add_argument("--redis-host", default="127.0.0.1")
    parser.add_argument("--redis-port", type=int, default=int(os.environ.get("KVDEX_REDIS_PORT", 16379)))
    parser.add_argument("--pg-host", default="127.0.0.1")
    parser.add_argument("--pg-port", type=int, default=int(os.environ.get("KVDEX_PG_PORT", 15432)))
    parser.add_argument("--pg-database", default=os.environ.get("KVDEX_PG_DATABASE", "kvdex"))
    parser.add_argument("--pg-user", default="postgres")
    args = parser.parse_args()
    store = args.mode if args.mode in ("redis", "postgres", "lmdb") else "simple"
    out = Emitter(args.impl + "-py" if args.impl.startswith("kvdex") else args.impl, store, args.workload)
    if args.impl == "kvdex-lmdb" and args.mode != "docstore-load":
        raise SystemExit("--impl kvdex-lmdb: only --mode docstore-load")
    if store == "lmdb" and args.impl != "kvdex":
        raise SystemExit("--mode lmdb: only --impl kvdex (LlamaIndex has no LMDB store)")
    if store in ("redis", "postgres") and args.impl not in ("llamaindex", "kvdex"):
        raise SystemExit(f"--mode {args.mode}: --impl llamaindex or kvdex")
    {"store": bench_store, "load": bench_load, "docstore": bench_docstore,
     "docstore-load": bench_docstore_load, "lmdb": bench_lmdb, "redis": bench_redis,
     "postgres": bench_postgres}[args.mode](args, out)


if __name__ == "__main__":
    main()
