"""The Python side of the benchmark: one implementation, one workload, one process.

    python bench/bench_python.py --impl {llamaindex,kvdex,kvdex-llamaindex} \
        --workload-file A.json --workload A [--mode store|load|docstore]

Prints one JSON object per measurement, in the same shape as kvdex_bench.
"""
import argparse
import asyncio
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


def read_workload(path: str):
    with open(path, "rb") as f:
        data = json.load(f)
    (collection, mapping), = data.items()
    return collection, list(mapping.items())


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
    t = time.perf_counter()
    for i in order:
        store.get(pairs[i][0], collection=collection)
    out.emit("get", n, time.perf_counter() - t, nbytes)

    t = time.perf_counter()
    everything = store.get_all(collection=collection)
    out.emit("get_all", len(everything), time.perf_counter() - t, nbytes)
    del everything

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

    async def gather_gets():
        keys = [pairs[i][0] for i in order[: min(n, 10000)]]
        t0 = time.perf_counter()
        results = await asyncio.gather(*(store.aget(k, collection=collection) for k in keys))
        return len(results), time.perf_counter() - t0

    count, seconds = asyncio.run(gather_gets())
    out.emit("aget x gather", count, seconds, 0)


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
    from llama_index.core.storage.docstore import SimpleDocumentStore
    from llama_index.core.storage.docstore.utils import json_to_doc

    collection, pairs = read_workload(args.workload_file)
    nodes = [json_to_doc(v) for _, v in pairs]
    n = len(nodes)
    docstore = SimpleDocumentStore(simple_kvstore=store_class(args.impl)())
    t = time.perf_counter()
    docstore.add_documents(nodes)
    out.emit("docstore.add_documents", n, time.perf_counter() - t)
    t = time.perf_counter()
    docstore.persist(args.docstore_file)
    out.emit("docstore.persist", n, time.perf_counter() - t, os.path.getsize(args.docstore_file))


def bench_docstore_load(args, out: Emitter):
    """A fresh process: load the persisted docstore, then get_node every node."""
    from llama_index.core.storage.docstore import SimpleDocumentStore

    path = args.docstore_file
    before = current_rss_mb()
    t = time.perf_counter()
    if args.impl == "llamaindex":
        loaded = SimpleDocumentStore.from_persist_path(path)
    else:
        loaded = SimpleDocumentStore(simple_kvstore=store_class(args.impl).from_persist_path(path))
    out.emit("docstore.load", 0, time.perf_counter() - t, os.path.getsize(path))
    out.emit("docstore.resident", 0, 0, os.path.getsize(path), current_rss_mb() - before)
    ids = list(loaded.docs.keys()) if args.impl == "llamaindex" else None
    if ids is None:
        with open(path, "rb") as f:
            ids = list(json.load(f)["docstore/data"].keys())
    random.Random(42).shuffle(ids)
    t = time.perf_counter()
    for node_id in ids:
        loaded.get_node(node_id)
    out.emit("docstore.get_node", len(ids), time.perf_counter() - t)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", required=True)
    parser.add_argument("--workload-file", required=True)
    parser.add_argument("--workload", required=True)
    parser.add_argument("--mode", default="store", choices=["store", "load", "docstore", "docstore-load"])
    parser.add_argument("--docstore-file", default="")
    args = parser.parse_args()
    out = Emitter(args.impl + "-py" if args.impl.startswith("kvdex") else args.impl, "simple", args.workload)
    {"store": bench_store, "load": bench_load, "docstore": bench_docstore,
     "docstore-load": bench_docstore_load}[args.mode](args, out)


if __name__ == "__main__":
    main()
