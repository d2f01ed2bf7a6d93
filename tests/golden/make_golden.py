#!/usr/bin/env python3
"""Regenerate kvdex golden test data under tests/golden/.

Usage:  python3 tests/golden/make_golden.py

Standard library only.  Deterministic: every random choice comes from
random.Random(20261126), so running the script twice writes identical bytes.
All expectations are computed with Python's own json module (default
json.dumps arguments, json.loads on *bytes*, as LlamaIndex's
SimpleKVStore.persist / from_persist_path do).

Outputs (all written in binary mode, no trailing newline):
  canonical/NAME.json              json.dumps(data).encode("ascii")
  noncanonical/NAME.input.json     bytes json.loads accepts, not canonical
  noncanonical/NAME.expected.json  json.dumps(json.loads(input)).encode()
  invalid/NAME.json                bytes to be rejected (pure ASCII)
  invalid/manifest.json            list of {"file", "python_error", "pos", ...}
"""

import hashlib
import json
import math
import os
import random
import struct
import sys
import uuid

SEED = 20261126
HERE = os.path.dirname(os.path.abspath(__file__))
DIRS = {name: os.path.join(HERE, name) for name in ("canonical", "noncanonical", "invalid")}

rng = random.Random(SEED)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def write_bytes(path, data):
    assert isinstance(data, bytes)
    with open(path, "wb") as f:
        f.write(data)


def clean_dirs():
    """Remove previously generated *.json files so stale names never linger."""
    for d in DIRS.values():
        os.makedirs(d, exist_ok=True)
        for name in os.listdir(d):
            if name.endswith(".json"):
                os.remove(os.path.join(d, name))


def check_store_shape(obj):
    """kvdex store shape: {collection: {key: dict}}."""
    assert isinstance(obj, dict), "top level must be an object"
    for coll, kv in obj.items():
        assert isinstance(coll, str)
        assert isinstance(kv, dict), "collection %r is not an object" % (coll,)
        for k, v in kv.items():
            assert isinstance(k, str)
            assert isinstance(v, dict), "value %r/%r is not an object" % (coll, k)


# --------------------------------------------------------------------------
# 1. canonical
# --------------------------------------------------------------------------

def random_finite_double():
    while True:
        x = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
        if math.isfinite(x):
            return x


def make_floats():
    named = {
        "0.1": 0.1,
        "1e-05": 1e-05,
        "1e-5": 1e-5,
        "0.00001": 0.00001,
        "0.0001": 0.0001,
        "1e16": 1e16,
        "1e+16": 1e+16,
        "1e15": 1e15,
        "9999999999999998.0": 9999999999999998.0,
        "123456789012345678.0": 123456789012345678.0,
        "5e-324": 5e-324,
        "-5e-324": -5e-324,
        "2.2250738585072014e-308": 2.2250738585072014e-308,
        "2.225073858507201e-308": 2.225073858507201e-308,
        "1.7976931348623157e308": 1.7976931348623157e308,
        "-1.7976931348623157e308": -1.7976931348623157e308,
        "-0.0": -0.0,
        "0.0": 0.0,
        "1.0": 1.0,
        "-1.0": -1.0,
        "100.0": 100.0,
        "1.5e300": 1.5e300,
        "9007199254740993.0": 9007199254740993.0,
        "9007199254740992.0": 9007199254740992.0,
        "3.141592653589793": 3.141592653589793,
        "1/3": 1 / 3,
        "2/3": 2 / 3,
        "1e22": 1e22,
        "1e23": 1e23,
        "1.0000000000000002": 1.0000000000000002,
        "0.9999999999999999": 0.9999999999999999,
        "4.35e-06": 4.35e-06,
        "123e-20": 123e-20,
        "1e-07": 1e-07,
        "-2.5": -2.5,
    }
    arith = {
        "0.1+0.2": 0.1 + 0.2,
        "0.1*3": 0.1 * 3,
        "1-0.9": 1 - 0.9,
        "100*1.1": 100 * 1.1,
        "1e16+1.0": 1e16 + 1.0,
        "2**-1074": 2.0 ** -1074,
        "2**-1022": 2.0 ** -1022,
        "2**1023": 2.0 ** 1023,
        "0.1**10": 0.1 ** 10,
        "1/7": 1 / 7,
        "22/7": 22 / 7,
        "sqrt(2)": math.sqrt(2),
        "e": math.e,
        "pi*1e10": math.pi * 1e10,
        "sum(0.1 x10)": sum([0.1] * 10),
        "1.1*1.1": 1.1 * 1.1,
        "3*1.1": 3 * 1.1,
        "2/3*1e-300": 2 / 3 * 1e-300,
        "1e307*10/10": 1e307 * 10 / 10,
        "float(2**63)": float(2 ** 63),
        "float(2**64)": float(2 ** 64),
        "float(10**21)": float(10 ** 21),
        "float(10**20)": float(10 ** 20),
    }
    # ~200 random floats across many exponents
    rand_bits = [random_finite_double() for _ in range(80)]
    rand_dec = []
    for _ in range(80):
        digits = rng.randint(1, 17)
        mant = rng.randrange(10 ** (digits - 1), 10 ** digits)
        exp = rng.randint(-340, 300)
        sign = "-" if rng.random() < 0.3 else ""
        rand_dec.append(float("%s%de%d" % (sign, mant, exp)))
    rand_scaled = []
    for e in range(-320, 309, 16):
        rand_scaled.append(rng.random() * 10.0 ** e)
    rand_small = [rng.uniform(-1000, 1000) for _ in range(10)]
    values = rand_bits + rand_dec + rand_scaled + rand_small
    return {
        "named": {"f%03d" % i: {"src": k, "v": v} for i, (k, v) in enumerate(named.items())},
        "arith": {k: {"v": v} for k, v in arith.items()},
        "random": {
            "bits": {"list": rand_bits},
            "decimal": {"list": rand_dec},
            "scaled": {"list": rand_scaled},
            "small": {"list": rand_small},
            "mixed_obj": {"k%03d" % i: v for i, v in enumerate(values[::7])},
        },
        "in_arrays": {"a": {"list": list(named.values()), "nested": [[0.1, [1e16, [-0.0]]], {"x": 5e-324}]}},
    }


def make_nan_inf():
    nan, inf = float("nan"), float("inf")
    return {
        "special": {
            "nan": {"v": nan},
            "inf": {"v": inf},
            "ninf": {"v": -inf},
            "all": {"nan": nan, "inf": inf, "-inf": -inf, "list": [nan, inf, -inf, 0.0, -0.0]},
            "nested": {"a": {"b": [1, {"c": [nan, [inf, [-inf]]]}]}, "d": [[[nan]]]},
            "neg_nan": {"v": -nan, "copysign": math.copysign(nan, -1.0)},
        },
        "arith": {"inf-inf": {"v": inf - inf}, "inf*0": {"v": inf * 0}, "1e308*10": {"v": 1e308 * 10}},
    }


def make_integers():
    ints = {
        "zero": 0, "one": 1, "minus_one": -1,
        "2**31-1": 2 ** 31 - 1, "2**31": 2 ** 31, "-2**31": -2 ** 31, "-2**31-1": -2 ** 31 - 1,
        "2**32": 2 ** 32,
        "2**53": 2 ** 53, "2**53+1": 2 ** 53 + 1, "-2**53-1": -2 ** 53 - 1,
        "2**63-1": 2 ** 63 - 1, "-2**63": -2 ** 63, "2**63": 2 ** 63, "-2**63-1": -2 ** 63 - 1,
        "2**64-1": 2 ** 64 - 1, "2**64": 2 ** 64, "-2**64": -2 ** 64, "-2**64-1": -2 ** 64 - 1,
        "10**30": 10 ** 30, "-10**40": -10 ** 40, "2**200": 2 ** 200, "-2**200": -2 ** 200,
        "10**100": 10 ** 100,
    }
    big_random = [rng.getrandbits(rng.randint(1, 300)) * rng.choice((1, -1)) for _ in range(40)]
    return {
        "ints": {k: {"v": v} for k, v in ints.items()},
        "lists": {
            "all": {"list": list(ints.values())},
            "random_big": {"list": big_random},
            "random_small": {"list": [rng.randint(-10 ** 6, 10 ** 6) for _ in range(30)]},
        },
        "bool_null": {"v": {"t": True, "f": False, "n": None, "one": 1, "zero": 0, "onef": 1.0}},
    }


def make_ascii_controls():
    allchars = "".join(chr(i) for i in range(128))
    return {
        "values": {
            "all": {"s": allchars, "rev": allchars[::-1]},
            "each": {"c%03d" % i: chr(i) for i in range(128)},
            "doubled": {"c%03d" % i: chr(i) * 2 + "x" + chr(i) for i in range(128)},
            "specials": {"quote": '"', "backslash": "\\", "slash": "/", "bs_quote": '\\"',
                         "del": "\x7f", "nul": "\x00", "crlf": "\r\n", "us": "\x1f",
                         "esc_like": "\\u0041\\n", "list": ["\x00", "\x08\x0c", "\t", "</script>"]},
        },
        "keys": {
            "as_inner_keys": {chr(i): i for i in range(128)},
            "long_key": {allchars: allchars},
        },
        "keys_level2": {chr(i): {"i": i} for i in range(128)},
        "ctl\x00\x01\x1f\x7f\"\\/ name": {"k\t\n": {"v": "\r"}},
        "": {"": {"": ""}},
    }


def make_unicode():
    samples = [
        "caf\u00e9 na\u00efve \u00fcber \u00df \u00ff \u00c5ngstr\u00f6m",
        "\u4e2d\u6587\u5b57\u7b26 \u65e5\u672c\u8a9e \ud55c\uad6d\uc5b4",
        "\u05e2\u05d1\u05e8\u05d9\u05ea \u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u200f\u200e",
        "e\u0301 a\u0308 n\u0303 \u0915\u094d\u0937",
        "\U0001F600", "\U0010FFFF", "\U00010000", "\U0001F4A9\U0001F468\u200d\U0001F469\u200d\U0001F467",
        "\u2028", "\u2029", "line\u2028sep\u2029para",
        "\ufeff", "\ufeffBOM at start", "\ufffd", "\uffff", "\ufffe",
        "\u0080", "\u00a0", "\u07ff", "\u0800", "\ud7ff", "\ue000",
        "\ud800", "\udfff", "\ud83d", "\ude00", "\ude00\ud83d", "\ud83d\ude00",
        "x\ud800y", "\udbff\udfff", "\ud800\ud800", "\udc00\udc00",
    ]
    values = {"s%02d" % i: {"v": s, "list": [s, s + s]} for i, s in enumerate(samples)}
    # Explicit surrogate pairs ("\ud83d\ude00", "\udbff\udfff") dump to the same escapes as the astral
    # characters U+1F600 / U+10FFFF, so as *keys* they would collide after a reload (json.dumps would
    # emit a duplicate key).  Use them as values only.
    key_samples = [s for s in samples if s not in ("\ud83d\ude00", "\udbff\udfff")]
    keys = {s: {"i": i} for i, s in enumerate(key_samples)}
    inner_keys = {"k": {s: s for s in key_samples}}
    data = {"values": values, "keys": keys, "inner_keys": inner_keys}
    for name in ["caf\u00e9", "\u6570\u636e/data", "\U0001F600", "\U0010FFFF", "\u2028\u2029", "\ufeff",
                 "\ud800", "\udfff", "\ud83d", "\ude00\ud83d", "\u05e2\u05d1\u05e8\u05d9\u05ea"]:
        data[name] = {name: {name: name}}
    return data


def make_nesting():
    def nest_dict(depth, leaf):
        v = leaf
        for i in range(depth):
            v = {"d": v}
        return v

    def nest_list(depth, leaf):
        v = leaf
        for i in range(depth):
            v = [v]
        return v

    def nest_mixed(depth):
        v = {}
        for i in range(depth):
            v = [v, i] if i % 2 else {"m%d" % i: v, "e": []}
        return v

    mixed = [1, 1.5, "s", True, False, None, [], {}, [[]], [{}], {"": []}, {"a": {}}, -0.0, 2 ** 70]
    return {
        "deep": {
            "dict100": nest_dict(100, {}),
            "dict500": nest_dict(500, {"leaf": [None, True]}),
            "list100": {"v": nest_list(100, [])},
            "list500": {"v": nest_list(500, 1)},
            "mixed500": {"v": nest_mixed(500)},
        },
        "empties": {
            "empty": {},
            "list": {"v": []},
            "lists": {"a": [], "b": [[]], "c": [[], []], "d": [{}, {}], "e": [[{}], {"x": []}]},
            "dicts": {"a": {}, "b": {"c": {}}, "d": {"e": {}, "f": {}}},
            "mixed_list": {"v": mixed, "nested": [mixed, [mixed]]},
        },
        "bools": {"b": {"t": True, "f": False, "n": None, "list": [True, False, None, [None], {"n": None}]}},
        "empty_collection": {},
    }


def make_key_order():
    numeric_like = {}
    for k in ["10", "9", "1", "01", "-1", "1e3", "0", "", "1.0", "2", " 1", "1 ", "Infinity", "NaN",
              "true", "null", "00", "100", "11", "-0"]:
        numeric_like[k] = {"k": k}
    reinserted = {k: {"orig": k} for k in "abcdefghij"}
    del reinserted["c"]
    del reinserted["a"]
    reinserted["c"] = {"reinserted": "c"}
    reinserted["e"] = {"updated_in_place": "e"}
    reinserted["a"] = {"reinserted": "a"}
    del reinserted["j"]
    reinserted["j"] = {"reinserted": "j"}
    reinserted["z"] = {"new": "z"}
    reinserted["b"] = {"updated_in_place": "b"}
    unsorted = {}
    names = ["key_%03d" % i for i in range(40)]
    rng.shuffle(names)
    for n in names:
        unsorted[n] = {"z": 1, "a": 2, "m": {"y": 1, "b": 2, "": 3}, "A": 4, "_": 5, "\u00e9": 6, "Z": 7}
    return {
        "zeta": {"b": {}, "a": {}},
        "numeric_like": numeric_like,
        "reinserted": reinserted,
        "unsorted": unsorted,
        "": {"": {"": {}}},
        "alpha": {"z": {"y": 1, "x": 2}},
    }


WORDS = ("the quick brown fox jumps over lazy dog index node vector store query "
         "retrieval document embedding chunk token context window summary answer "
         "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod").split() + [
    "caf\u00e9", "na\u00efve", "r\u00e9sum\u00e9", "\u00fcber", "Stra\u00dfe", "\u6771\u4eac", "\u65e5\u672c\u8a9e",
    "\u0395\u03bb\u03bb\u03ac\u03b4\u03b1", "\u041c\u043e\u0441\u043a\u0432\u0430", "\U0001F600",
    "\u2014", "\u201cquoted\u201d", "tab\there", "new\nline", "\"q\"", "back\\slash",
]


def random_text(n_chars):
    out = []
    length = 0
    while length < n_chars:
        w = rng.choice(WORDS[:40]) if rng.random() < 0.9 else rng.choice(WORDS)
        out.append(w)
        length += len(w) + 1
    return " ".join(out)


def rand_uuid():
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def make_llamaindex(n_nodes=50, n_docs=10, text_chars=1000):
    data, metadata, ref_doc_info = {}, {}, {}
    docs = []
    for d in range(n_docs):
        doc_id = rand_uuid()
        doc_meta = {
            "file_path": "/data/corpus/file_%02d.txt" % d,
            "file_name": "file_%02d.txt" % d,
            "file_type": "text/plain",
            "file_size": rng.randint(1000, 10 ** 7),
            "creation_date": "2024-%02d-%02d" % (rng.randint(1, 12), rng.randint(1, 28)),
            "last_modified_date": "2025-%02d-%02d" % (rng.randint(1, 12), rng.randint(1, 28)),
        }
        docs.append((doc_id, doc_meta, hashlib.sha256(doc_id.encode()).hexdigest()))
        ref_doc_info[doc_id] = {"node_ids": [], "metadata": doc_meta}
    offsets = {}
    for i in range(n_nodes):
        doc_id, doc_meta, doc_hash = docs[i % n_docs]
        node_id = rand_uuid()
        text = random_text(text_chars)
        start = offsets.get(doc_id, 0)
        end = start + len(text)
        offsets[doc_id] = end + rng.randint(0, 200)
        node_meta = dict(doc_meta)
        node_meta["page_label"] = str(i // n_docs + 1)
        node_hash = hashlib.sha256(text.encode("utf-8")).hexdigest()
        data[node_id] = {
            "__data__": {
                "id_": node_id,
                "embedding": None,
                "metadata": node_meta,
                "excluded_embed_metadata_keys": [],
                "excluded_llm_metadata_keys": [],
                "relationships": {
                    "1": {"node_id": doc_id, "node_type": "4", "metadata": doc_meta, "hash": doc_hash},
                },
                "metadata_template": "{key}: {value}",
                "metadata_separator": "\n",
                "text": text,
                "mimetype": "text/plain",
                "start_char_idx": start,
                "end_char_idx": end,
                "metadata_seperator": "\n",
                "text_template": "{metadata_str}\n\n{content}",
                "class_name": "TextNode",
            },
            "__type__": "1",
        }
        metadata[node_id] = {"doc_hash": node_hash, "ref_doc_id": doc_id}
        ref_doc_info[doc_id]["node_ids"].append(node_id)
    return {"docstore/data": data, "docstore/metadata": metadata, "docstore/ref_doc_info": ref_doc_info}


def make_many_collections():
    bases = ["index_store/data", "docstore/data", "docstore/metadata", "docstore/ref_doc_info",
             "vector_store/data", "graph_store/data", "data", "Zeta", "alpha", "_private",
             "10", "2", "", " ", "~tilde", "\u00e9t\u00e9", "A", "a", "B", "b"]
    names = bases + ["coll_%s" % rng.getrandbits(32) for _ in range(10)]
    rng.shuffle(names)
    assert names != sorted(names)
    out = {}
    for i, n in enumerate(names):
        out[n] = {"k%d" % j: {"pos": i, "j": j} for j in range(rng.randint(0, 3))}
    return out


def canonical_sets():
    return [
        ("floats", make_floats()),
        ("nan_inf", make_nan_inf()),
        ("integers", make_integers()),
        ("strings_ascii_controls", make_ascii_controls()),
        ("strings_unicode", make_unicode()),
        ("nesting", make_nesting()),
        ("empty_store", {}),
        ("empty_collections", {"data": {}, "docstore/data": {}}),
        ("empty_values", {"data": {"a": {}, "b": {}, "": {}}, "docstore/data": {"x": {}}, "empty": {}}),
        ("key_order", make_key_order()),
        ("llamaindex_like", make_llamaindex()),
        ("duplicate_collections_order", make_many_collections()),
    ]


def gen_canonical():
    written = []
    for name, data in canonical_sets():
        check_store_shape(data)
        b = json.dumps(data).encode("ascii")
        assert json.dumps(json.loads(b)) == b.decode(), name
        write_bytes(os.path.join(DIRS["canonical"], name + ".json"), b)
        written.append(name)
    return written


# --------------------------------------------------------------------------
# 2. noncanonical
# --------------------------------------------------------------------------

def noncanonical_sets():
    sample = {
        "data": {
            "k1": {"text": "caf\u00e9 \U0001F600", "n": 1, "f": 0.5, "list": [1, 2.5, None, True, False, [], {}],
                   "nested": {"z": {}, "a": [{"b": []}]}},
            "k0": {},
        },
        "docstore/data": {"b": {"x": -0.0, "y": 1e16}, "a": {"s": "\"q\" \\ / \n\t"}},
        "empty": {},
    }
    sets = []
    sets.append(("indent2", json.dumps(sample, indent=2).encode("ascii")))
    sets.append(("indent_tab", json.dumps(sample, indent="\t").encode("ascii")))
    sets.append(("compact", json.dumps(sample, separators=(",", ":")).encode("ascii")))
    sets.append(("sort_keys", json.dumps(sample, sort_keys=True).encode("ascii")))

    uni = {
        "caf\u00e9": {"\u6771\u4eac": {"s": "\u00e9\u00e8 \u4e2d\u6587 \u05e2\u05d1\u05e8\u05d9\u05ea \U0001F600 \U0010FFFF "
                                            "\U00010000 \u2028\u2029 \ufeff \u007f \u0080 \uffff",
                                        "\U0001F4A9": ["\U0001F600", "\u00ff"]}},
        "data": {"k": {"ctl": "\x00\x1f\n", "q": "\"\\/"}},
    }
    sets.append(("ensure_ascii_false", json.dumps(uni, ensure_ascii=False).encode("utf-8")))

    sets.append(("uppercase_escapes",
                 b'{"coll\\u00C9": {"key\\u00E9": {"s": "\\u00E9 \\uD83D\\uDE00 \\uDBFF\\uDFFF \\uDFFF alone '
                 b'\\uD800 alone \\u00FF \\uABCD \\uFEFF \\u2028 \\u001F", "\\uD83D\\uDE00": "\\u00e9\\u00E9"}}}'))
    sets.append(("escaped_ascii",
                 b'{"\\u0064ata": {"\\u006B\\/": {"s": "\\u0041\\u0042C \\/ \\u000a \\u000A \\u0009 \\u0022 '
                 b'\\u005c \\u005C \\u002F \\u0020 \\u007f \\u007F \\b\\f\\n\\r\\t \\u0000 \\u0008 \\u000c \\u000d",'
                 b' "\\u0061": "\\/\\/"}}}'))
    sets.append(("number_forms",
                 b'{"data": {"nums": {"a": 1E5, "b": 1e+5, "c": -0, "d": -0.0, "e": 0.10, "f": 1.0e0, '
                 b'"g": 1e400, "h": -1e400, "i": 1e-400, "j": 12345678901234567890123456789, '
                 b'"k": -1e-400, "l": 0e0, "m": 0E-0, "n": 1.5E+300, "o": 123.456e-2, "p": 100e-2, '
                 b'"q": 1.00000000000000000000001, "r": 0.1000000000000000055511151231257827, '
                 b'"s": 9007199254740993, "t": 9007199254740993.0, "u": 2.4703282292062328e-324, '
                 b'"v": 2.4703282292062327e-324, "w": 1.7976931348623158e308, "x": 1.7976931348623159e308, '
                 b'"z": 5e-0324}, "list": {"v": [1E5,1e+5,-0,-0.0,0.10,1.0e0,1e400,-1e400,1e-400]}}}'))
    sets.append(("duplicate_keys",
                 b'{"data": {"k": {"a": 1, "b": 2, "a": 3, "c": {"x": 1, "x": {"y": 2}}}, '
                 b'"k2": {"v": 1}, "k": {"a": "second", "z": 0, "a": "third"}, "k3": {}}, '
                 b'"other": {"o": {}}, '
                 b'"data": {"k2": {"v": 2}, "new": {"n": true}, "k2": {"v": 3}}, '
                 b'"last": {}, "other": {"o2": {"p": [1, {"d": 1, "d": 2}]}}}'))
    sets.append(("whitespace",
                 b' \t\r\n{ \n\t"data"\r\n :\t{\n  "k"  :  {\t"a" :\r[ 1 ,\n2\t,\r\n{ } , [ ] , true ,false\t, null ] ,'
                 b'\n"b"\t:\t"s p a c e"\r,"c":{\r\n}}\t}\r\n,\n\n"e"\t:{ }\t}\t \r\n\n '))
    sets.append(("utf8_bom", b'\xef\xbb\xbf' + json.dumps(sample).encode("ascii")))
    sets.append(("utf8_bom_raw_utf8", b'\xef\xbb\xbf{"d\xc3\xa9": {"k": {"s": "\xe6\x9d\xb1\xf0\x9f\x98\x80"}}}'))
    sets.append(("surrogate_bytes",
                 b'{"data": {"k\xed\xa0\x80": {"hi": "\xed\xa0\x80", "lo": "\xed\xbf\xbf", '
                 b'"cesu_pair": "\xed\xa0\xbd\xed\xb8\x80", "real_pair": "\xf0\x9f\x98\x80", '
                 b'"rev": "\xed\xb8\x80\xed\xa0\xbd", "mix": "a\xed\xa0\xbdb"}}, "\xed\xb3\xbf": {}}'))
    sets.append(("nan_literals",
                 b'{"data":{"k":{"a":NaN,"b":[ -Infinity ,Infinity,NaN],"c" :-Infinity ,\n"d":\tInfinity}},'
                 b'"x" : { "y" : { "z" : [NaN ,[ NaN ] ] } } }'))
    return sets


CANONICAL_BY_CONSTRUCTION = {"sort_keys"}


def gen_noncanonical():
    written = []
    for name, inp in noncanonical_sets():
        try:
            obj = json.loads(inp)
        except ValueError as e:  # JSONDecodeError or UnicodeDecodeError
            print("skipping noncanonical %s: json.loads rejects it: %r" % (name, e), file=sys.stderr)
            continue
        check_store_shape(obj)
        expected = json.dumps(obj).encode()
        # sort_keys output is itself canonical (json.loads keeps file order, so the expected output is the
        # sorted order, byte-identical to the input); it checks that kvdex keeps file order, not that it
        # re-sorts or restores some other order.
        assert expected != inp or name in CANONICAL_BY_CONSTRUCTION, "%s is already canonical" % name
        assert json.dumps(json.loads(expected)) == expected.decode(), name
        write_bytes(os.path.join(DIRS["noncanonical"], name + ".input.json"), inp)
        write_bytes(os.path.join(DIRS["noncanonical"], name + ".expected.json"), expected)
        written.append(name)
    return written


# --------------------------------------------------------------------------
# 3. invalid
# --------------------------------------------------------------------------

def invalid_sets():
    small_store = json.dumps(make_llamaindex(n_nodes=3, n_docs=1, text_chars=300)).encode("ascii")
    return [
        ("empty", b""),
        ("whitespace_only", b" \n\t\r "),
        ("truncated_50pct", small_store[: len(small_store) // 2]),
        ("truncated_len_minus_1", small_store[:-1]),
        ("truncated_after_colon", b'{"data": {"k": {"a": '),
        ("truncated_in_number", b'{"data": {"k": {"a": 12'),
        ("truncated_in_literal", b'{"data": {"k": {"a": tru'),
        ("truncated_in_escape", b'{"data": {"k": {"a": "ab\\'),
        ("truncated_in_unicode_escape", b'{"data": {"k": {"a": "ab\\ud8'),
        ("truncated_after_key", b'{"data": {"k"'),
        ("unterminated_string", b'{"data": {"k": {"a": "abc}}}'),
        ("unterminated_key", b'{"data": {"k'),
        ("missing_colon", b'{"data" {"k": {}}}'),
        ("missing_colon_inner", b'{"data": {"k": {"a" 1}}}'),
        ("missing_comma", b'{"data": {"a": {} "b": {}}}'),
        ("missing_comma_array", b'{"data": {"k": {"a": [1 2]}}}'),
        ("trailing_comma_object", b'{"data": {"k": {"a": 1,}}}'),
        ("trailing_comma_top", b'{"data": {},}'),
        ("trailing_comma_array", b'{"data": {"k": {"a": [1, 2,]}}}'),
        ("single_quotes", b"{'data': {}}"),
        ("single_quotes_value", b"{\"data\": {\"k\": {\"a\": 'x'}}}"),
        ("unquoted_key", b'{data: {}}'),
        ("invalid_escape_x", b'{"data": {"k": {"a": "\\x41"}}}'),
        ("invalid_escape_in_key", b'{"data": {"\\q": {}}}'),
        ("bad_u_escape_short", b'{"data": {"k": {"a": "\\u12"}}}'),
        ("bad_u_escape_nonhex", b'{"data": {"k": {"a": "\\u12G4"}}}'),
        ("raw_tab_in_string", b'{"data": {"k": {"a": "x\ty"}}}'),
        ("raw_0x01_in_string", b'{"data": {"k": {"a": "x\x01y"}}}'),
        ("raw_newline_in_key", b'{"data": {"k\n": {}}}'),
        ("leading_zeros", b'{"data": {"k": {"a": 01}}}'),
        ("plus_sign", b'{"data": {"k": {"a": +1}}}'),
        ("leading_dot", b'{"data": {"k": {"a": .5}}}'),
        ("trailing_dot", b'{"data": {"k": {"a": 1.}}}'),
        ("exponent_no_digits", b'{"data": {"k": {"a": 1e}}}'),
        ("lone_minus", b'{"data": {"k": {"a": -}}}'),
        ("hex_number", b'{"data": {"k": {"a": 0x10}}}'),
        ("nan_lowercase", b'{"data": {"k": {"a": nan}}}'),
        ("minus_nan", b'{"data": {"k": {"a": -NaN}}}'),
        ("infinity_lowercase", b'{"data": {"k": {"a": infinity}}}'),
        ("inf_short", b'{"data": {"k": {"a": Inf}}}'),
        ("true_capitalized", b'{"data": {"k": {"a": True}}}'),
        ("none_literal", b'{"data": {"k": {"a": None}}}'),
        ("extra_data", b'{"data": {}} {"more": {}}'),
        ("extra_data_garbage", b'{"data": {}}x'),
        ("extra_close_brace", b'{"data": {}}}'),
        ("comment_line", b'{"data": {} // comment\n}'),
        ("comment_block", b'{/* c */"data": {}}'),
        ("comment_leading", b'// c\n{"data": {}}'),
        ("unclosed_object", b'{"data": {"k": {}}'),
        ("unclosed_array", b'{"data": {"k": {"a": [1, 2}}}'),
        ("mismatched_brackets", b'{"data": {"k": {"a": [1}]}}'),
        ("non_string_key", b'{"data": {1: {}}}'),
        ("formfeed_whitespace", b'{\x0c"data": {}}'),
        ("vertical_tab_whitespace", b'{"data":\x0b{}}'),
        ("nul_byte_whitespace", b'{"data": {}}\x00'),
    ]


# Files Python's json.loads ACCEPTS but kvdex must reject (value / collection / top level not an object).
# Each is (name, prefix, offending_value, suffix); expected_offset = len(prefix).
NOT_OBJECT_SETS = [
    ("not_object_value_array", b'{"data": {"k": ', b'[1, 2]', b'}}'),
    ("not_object_value_int", b'{"data": {"k": ', b'1', b'}}'),
    ("not_object_value_string", b'{"data": {"a": {}, "k": ', b'"str"', b'}}'),
    ("not_object_value_null", b'{"data": {"k": ', b'null', b'}}'),
    ("not_object_value_true", b'{"data": {"a": {"x": [1]}, "k":   \n', b'true', b'}}'),
    ("not_object_value_nan", b'{"data": {"k": ', b'NaN', b'}}'),
    ("not_object_value_second_collection", b'{"data": {"k": {}}, "other": {"a": {}, "b": ', b'-1.5e3', b'}}'),
    ("not_object_collection_array", b'{"data": ', b'[1]', b'}'),
    ("not_object_collection_null", b'{"ok": {}, "data": ', b'null', b'}'),
    ("not_object_collection_string", b'{"data":', b'"x"', b'}'),
    ("not_object_top_array", b'', b'[1]', b''),
    ("not_object_top_empty_array", b'', b'[]', b''),
    ("not_object_top_string", b'', b'"str"', b''),
    ("not_object_top_number", b'', b'1', b''),
    ("not_object_top_null", b'', b'null', b''),
    ("not_object_top_leading_ws", b' \n\t', b'[{"data": {}}]', b'\r\n'),
]


def gen_invalid():
    manifest = []
    for name, b in invalid_sets():
        b.decode("ascii")  # must be pure ASCII so pos == byte offset
        try:
            json.loads(b)
        except json.JSONDecodeError as e:
            manifest.append({"file": name + ".json", "python_error": e.msg, "pos": e.pos})
        else:
            raise AssertionError("invalid set %s was accepted by json.loads" % name)
        write_bytes(os.path.join(DIRS["invalid"], name + ".json"), b)
    for name, prefix, value, suffix in NOT_OBJECT_SETS:
        b = prefix + value + suffix
        b.decode("ascii")
        obj = json.loads(b)  # must be accepted by Python
        try:
            check_store_shape(obj)
        except AssertionError:
            pass
        else:
            raise AssertionError("%s unexpectedly has store shape" % name)
        off = len(prefix)
        # sanity: the bytes at the offset parse (via raw_decode) to the offending non-object value
        v, end = json.JSONDecoder().raw_decode(b.decode("ascii"), off)
        assert not isinstance(v, dict) and b[off:end] == value, name
        manifest.append({"file": name + ".json", "python_error": None, "pos": None,
                         "kvdex_reason": "not an object", "expected_offset": off})
        write_bytes(os.path.join(DIRS["invalid"], name + ".json"), b)
    write_bytes(os.path.join(DIRS["invalid"], "manifest.json"), json.dumps(manifest, indent=2).encode("ascii"))
    return manifest


def main():
    clean_dirs()
    c = gen_canonical()
    n = gen_noncanonical()
    m = gen_invalid()
    print("python %s" % sys.version.split()[0])
    print("canonical: %d, noncanonical: %d, invalid: %d" % (len(c), len(n), len(m)))


if __name__ == "__main__":
    main()
