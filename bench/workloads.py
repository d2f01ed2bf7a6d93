"""Benchmark workloads (docs/benchmarks.md), generated from a fixed seed.

A "nodes": N values in collection docstore/data shaped like a serialized LlamaIndex
TextNode (about 1.5-1.7 KB of JSON each), keyed by UUIDs.
B "small": N values {"v": i} in collection "data".
"""
import json
import random
import uuid

SEED = 20261126
# Mostly English with the occasional non-ASCII word, as in typical documents.
WORDS = ("the of and to in a is that for it as was with be by on not he this are or his from at "
         "which but have an they you were her she there one all we can their has been if more "
         "storage index node vector query document retrieval embedding context persist "
         "collection batch atomic durable memory parser latency throughput system data").split()
RARE_WORDS = "résumé naïve café Zürich 東京 данные".split()


def node_value(rng: random.Random, node_id: str, doc_id: str) -> dict:
    words = []
    length = 0
    while length < 1000:
        w = rng.choice(RARE_WORDS) if rng.random() < 0.01 else rng.choice(WORDS)
        words.append(w)
        length += len(w) + 1
    text = " ".join(words)
    start = rng.randrange(0, 100000)
    return {
        "__data__": {
            "id_": node_id,
            "embedding": None,
            "metadata": {"file_name": f"doc_{rng.randrange(1000)}.txt", "page": rng.randrange(1, 500),
                         "score": rng.random()},
            "excluded_embed_metadata_keys": [],
            "excluded_llm_metadata_keys": [],
            "relationships": {"1": {"node_id": doc_id, "node_type": "4", "metadata": {},
                                    "hash": "%064x" % rng.getrandbits(256), "class_name": "RelatedNodeInfo"}},
            "metadata_template": "{key}: {value}",
            "metadata_separator": "\n",
            "text": text,
            "mimetype": "text/plain",
            "start_char_idx": start,
            "end_char_idx": start + len(text),
            "metadata_seperator": "\n",
            "text_template": "{metadata_str}\n\n{content}",
            "class_name": "TextNode",
        },
        "__type__": "1",
    }


def workload_a(n: int):
    """Yields (key, value) pairs of workload A."""
    rng = random.Random(SEED)
    doc_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    for i in range(n):
        if i % 20 == 0:
            doc_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        node_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        yield node_id, node_value(rng, node_id, doc_id)


def workload_b(n: int):
    for i in range(n):
        yield f"key-{i:08d}", {"v": i}


def write_persist_file(path: str, collection: str, pairs) -> None:
    """Writes what LlamaIndex's SimpleKVStore.persist writes for these pairs."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps({collection: dict(pairs)}))


if __name__ == "__main__":
    import sys
    kind, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if kind == "A":
        write_persist_file(out, "docstore/data", workload_a(n))
    else:
        write_persist_file(out, "data", workload_b(n))
