"""The decoder behind get: a fast path for the canonical text a store holds (string
caches, escapes decoded straight into the str) and the validating parser for
anything else. Whatever the path, the result must be json.loads' result."""

from __future__ import annotations

import json
import math
import random
import sys

import pytest

import kvdex
from kvdex import _native


def _decode(text: str, fast_only: bool = False):
    return _native._decode_stored(text.encode("utf-8", "surrogatepass"), fast_only)


def _same(a, b) -> bool:
    """Equal with the same types all the way down, NaN equal to NaN, same key order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def _check_canonical(value) -> None:
    """json.dumps text of `value` decodes on the fast path to json.loads' result."""
    text = json.dumps(value)
    expected = json.loads(text)
    fast = _decode(text, fast_only=True)
    assert fast is not None, text
    assert _same(fast, expected), text
    assert _same(_decode(text), expected), text


def test_scalars_and_containers():
    _check_canonical({"a": None, "b": True, "c": False, "d": [], "e": {}, "f": [[], {}, [{}]]})
    _check_canonical({"x": [1, "two", 3.0, None, True, {"y": [False]}]})


@pytest.mark.parametrize(
    "n",
    [0, 1, -1, 9, 10, 255, 256, -5, -6, 2**31, 2**63 - 1, -(2**63), 2**63, 2**64,
     999_999_999_999_999_999, -999_999_999_999_999_999, 10**18, -(10**18), 10**19, 10**100,
     -(10**100)],
)
def test_ints_of_any_size(n):
    _check_canonical({"n": n, "list": [n, -n]})


@pytest.mark.parametrize(
    "x",
    [0.0, -0.0, 1.5, -2.25, 0.1, 1e-05, 1e-07, 1e16, 1e+22, 1.5e300, 5e-324, 2.2250738585072014e-308,
     1.7976931348623157e308, 123456789.123456789, float("nan"), float("inf"), float("-inf")],
)
def test_floats(x):
    _check_canonical({"x": x, "list": [x, x]})


def test_non_canonical_numbers_follow_json_loads():
    for text in ['{"n": -0}', '{"n": 1E5}', '{"n": 1e5}', '{"n": 1.0E-2}', '{"n": 1e400}',
                 '{"n": -1e400}', '{"n": 1e-400}', '{"n": 0.000}']:
        assert _same(_decode(text), json.loads(text)), text


STRINGS = [
    "", "a", "plain ascii", 'quote " backslash \\ slash /', "\x00\x01\x1f\x7f\n\r\t\b\f",
    "é", "\xe9\xff\x80", "Zürich", "Ελληνικά", "日本語", "🚀", "a🚀b", "🚀" * 20,
    "\ud800", "\udfff", "\ud800x", "x\ud800", "\ud83d\ude80", "\ud800\ud800", "\udc00\ud800",
    "\ud83d" + "\\" + "ude80",  # a high surrogate, then text that only looks like an escape
    "\u2028\u2029\ufeff\uffff", "\x7f" * 40,
]


@pytest.mark.parametrize("s", STRINGS, ids=range(len(STRINGS)))
def test_strings_values_and_keys(s):
    _check_canonical({"v": s, "list": [s, s], s: s, "nested": {s: [s]}})


def test_strings_around_vector_widths():
    # Escapes and non-ASCII characters at every offset of strings of 0..70 characters,
    # in each str kind (1, 2 and 4 bytes per character).
    rng = random.Random(11)
    for special in ["\n", "\\", '"', "é", "\xff", "ж", "\ud800", "🚀", "\x00"]:
        for length in range(0, 71, 3):
            for at in {0, length // 2, max(0, length - 1)}:
                chars = [rng.choice("abcxyz0189 -_") for _ in range(length)]
                if length:
                    chars[at] = special
                s = "".join(chars)
                _check_canonical({"s": s, s: 1})


def test_random_strings():
    rng = random.Random(5)
    for _ in range(3000):
        s = "".join(chr(rng.choice([rng.randint(0x20, 0x7E), rng.randint(0, 0x1F), rng.randint(0x80, 0xFF),
                                    rng.randint(0x100, 0xFFFF), rng.randint(0x10000, 0x10FFFF)]))
                    for _ in range(rng.randint(0, 40)))
        _check_canonical({"s": s, s[:10]: [s]})


def test_key_cache_never_returns_a_wrong_key():
    # Keys alike in length, first and last bytes, differing in the middle; more keys
    # than the cache holds, each seen many times, in a shuffled order; keys just under,
    # at and over the cached length; keys with escapes (cached by their raw text).
    keys = [f"prefix__{i:04d}__suffix" for i in range(600)]
    keys += [f"p{i}" for i in range(300)] + ["x" * n for n in range(0, 60)]
    keys += ["a\nb", "a\\nb", "a\\\\nb", "é", "\\u00e9", "\ud800", "\\ud800", "\ud83d\ude80"]
    keys += ["k" * 47 + c for c in "abc"] + ["k" * 48 + c for c in "abc"] + ["k" * 49 + c for c in "abc"]
    rng = random.Random(3)
    store = kvdex.SimpleKVStore()
    for i in range(300):
        chosen = rng.sample(keys, 40)
        value = {k: {k: [k, i]} for k in chosen}
        store.put(str(i), value)
        got = store.get(str(i))
        assert _same(got, json.loads(json.dumps(value)))
        assert len(got) == len(chosen)


def test_value_cache_never_returns_a_wrong_value():
    # Many short values, alike and repeated, some with escapes, interleaved.
    rng = random.Random(4)
    pool = [f"v{i}" for i in range(2000)] + ["\n", "\\n", "\t", "é", "\\u00e9", "\ud800", "🚀", ""]
    pool += [f"same_len_{i:03d}_x" for i in range(500)] + ["y" * n for n in range(0, 40)]
    store = kvdex.SimpleKVStore()
    for i in range(500):
        value = {"vals": [rng.choice(pool) for _ in range(30)], "one": rng.choice(pool)}
        store.put("k", value)
        assert _same(store.get("k"), json.loads(json.dumps(value)))


def test_cached_keys_are_interned():
    # Interned once the key cache is in use (an earlier test may have left it
    # bypassed for a few thousand strings: see test_cache_bypass_phases).
    store = kvdex.SimpleKVStore()
    store.put("k", {"some_key": {"another_key": 1}})
    for _ in range(10_000):
        got = store.get("k")
        (key,) = got
        if sys.intern(key) is key:
            break
    assert sys.intern(key) is key
    assert sys.intern(next(iter(got[key]))) is next(iter(got[key]))


def test_cache_bypass_phases():
    # Phases of strings that never repeat (the caches stop looking them up) and of
    # strings that do (they start again), keys and values: always the right result.
    rng = random.Random(8)
    store = kvdex.SimpleKVStore()
    counter = 0
    for phase in range(6):
        for i in range(400):
            if phase % 2 == 0:
                value = {f"k{counter}_{j}": f"v{counter}_{j}" for j in range(12)}
                counter += 1
            else:
                value = {f"key{j}": f"val{rng.randrange(20)}" for j in range(12)}
            store.put("k", value)
            assert _same(store.get("k"), value)


def test_results_are_independent_despite_shared_strs():
    store = kvdex.SimpleKVStore()
    store.put("k", {"a": ["x", {"b": "y"}], "c": {"d": []}})
    first = store.get("k")
    first["a"][1]["b"] = "changed"
    first["a"].append("more")
    first["c"]["d"].append(1)
    del first["c"]
    assert store.get("k") == {"a": ["x", {"b": "y"}], "c": {"d": []}}


def test_depth_at_the_fast_path_limit_and_beyond():
    # Deeper than the fast path goes, the validating parser takes over.
    for depth in [1, 62, 63, 64, 65, 66, 200, 500]:
        value: object = {"leaf": [1, "x"]}
        for i in range(depth):
            value = [value] if i % 2 else {"d": value}
        text = json.dumps({"v": value})
        assert json.dumps(_decode(text)) == text
        fast = _decode(text, fast_only=True)
        if depth + 2 <= 64:  # containers inside the top object: at most 64 levels
            assert json.dumps(fast) == text
        else:
            assert fast is None


def test_deep_text_is_an_error_not_a_crash():
    text = '{"v": ' + "[" * 5000 + "]" * 5000 + "}"
    with pytest.raises(kvdex.CorruptionError, match="nesting too deep"):
        _decode(text)


NON_CANONICAL = [
    '{"a":1}', '{ "a": 1}', '{"a" : 1}', '{"a": 1 }', '{"a": 1,"b": 2}', ' {"a": 1}', '{"a": 1}\n',
    '{"a": [1,2]}', '{"a": [ 1]}', '{"a": "\\/"}', '{"a": "\\u00E9"}', '{"a": "\\u00e9\\uD83D\\uDE80"}',
    '{"a": "é"}', '{"é": 1}', '{"a": "\U0001f680"}', '{"a": "x\x7fy"}', '{"a": 1, "a": 2}',
    '{"b": 1, "a": 2, "b": 3}', '{"a": NaN, "b": -Infinity}',
]


@pytest.mark.parametrize("text", NON_CANONICAL, ids=range(len(NON_CANONICAL)))
def test_other_valid_text_is_json_loads(text):
    expected = json.loads(text)
    assert _same(_decode(text), expected)
    fast = _decode(text, fast_only=True)
    assert fast is None or _same(fast, expected)


INVALID = [
    "", "{", "}", "[]", "1", '"s"', "null", '{"a"}', '{"a": }', '{"a": 1,}', '{"a": 01}', '{"a": 1.}',
    '{"a": .5}', '{"a": 1e}', '{"a": -}', '{"a": +1}', '{"a": tru}', '{"a": nul}', '{"a": Nan}',
    '{"a": -Inf}', '{"a": "\x01"}', '{"a": "\\x"}', '{"a": "\\u12"}', '{"a": "\\u12g4"}',
    '{"a": "unterminated}', '{"a": 1}}', '{"a": 1} x', '{"a": [1, 2}', '{"a": {"b": 1]}',
    '{1: 2}', '{"a": "\xff"}',
]


@pytest.mark.parametrize("text", INVALID, ids=range(len(INVALID)))
def test_invalid_text_is_corruption(text):
    raw = text.encode("latin-1")
    with pytest.raises(kvdex.CorruptionError):
        _native._decode_stored(raw)
    assert _native._decode_stored(raw, True) is None


def test_every_truncation_is_handled():
    # Each prefix of a node-like text (which never ends in the middle of a value the
    # fast decoder could finish) is refused, never read past its end.
    value = {"__data__": {"id_": "x", "text": "héllo\n🚀 \\ \"", "n": [1, -2.5, 10**30, None, True],
                          "m": {"k": "\ud800"}}, "__type__": "1"}
    text = json.dumps(value).encode()
    for cut in range(len(text)):
        assert _native._decode_stored(text[:cut], True) is None
        with pytest.raises(kvdex.CorruptionError):
            _native._decode_stored(text[:cut])
    assert _same(_native._decode_stored(text, True), value)


def test_huge_int_digit_limit_is_pythons():
    if not hasattr(sys, "get_int_max_str_digits"):
        pytest.skip("no int digit limit in this Python")
    digits = sys.get_int_max_str_digits() + 1
    with pytest.raises(ValueError):
        json.loads('{"x": 1' + "0" * digits + "}")
    with pytest.raises(ValueError):
        _decode('{"x": 1' + "0" * digits + "}")


def test_node_shaped_values_round_trip():
    rng = random.Random(9)
    store = kvdex.SimpleKVStore()
    values = {}
    for i in range(200):
        text = " ".join(rng.choice(["the", "node", "é", "東京", "данные", "\n", "🚀", "a\"b"])
                        for _ in range(rng.randint(0, 300)))
        value = {"__data__": {"id_": f"id-{i}", "embedding": None,
                              "metadata": {"file_name": f"doc_{i % 7}.txt", "page": i, "score": i / 7},
                              "excluded_embed_metadata_keys": [], "relationships": {},
                              "text": text, "metadata_separator": "\n", "class_name": "TextNode"},
                 "__type__": "1"}
        values[str(i)] = value
        store.put(str(i), value)
    for key in rng.sample(list(values), len(values)):
        assert store.get(key) == values[key]
    assert store.get_all() == values


def test_lists_without_containers_are_untracked_by_the_gc():
    # CPython leaves a dict of atomic values untracked; the decoder does the same for
    # a list holding no container, so kept results cost later collections less.
    import gc

    value = {"empty": [], "atoms": ["a", 1, 2.5, True, None], "nested": [[], {"k": 1}],
             "d": {"k": "v"}, "holder": {"l": []}}
    got = _decode(json.dumps(value), fast_only=True)
    assert _same(got, json.loads(json.dumps(value)))
    assert not gc.is_tracked(got["empty"])
    assert not gc.is_tracked(got["atoms"])
    assert gc.is_tracked(got["nested"])  # holds containers
    assert not gc.is_tracked(got["nested"][0])
    assert not gc.is_tracked(got["d"])  # CPython's own rule for dicts
    assert gc.is_tracked(got["holder"])  # a dict holding a list: CPython tracks it
    assert gc.is_tracked(got)
    # Mutating them works as on any list; the store's value is not changed.
    store = kvdex.SimpleKVStore()
    store.put("k", value)
    mine = store.get("k")
    mine["atoms"].append({"x": [1]})
    mine["empty"].extend([[], "y"])
    gc.collect()
    assert mine["atoms"][-1] == {"x": [1]} and mine["empty"] == [[], "y"]
    assert store.get("k") == json.loads(json.dumps(value))


def test_a_cycle_through_an_untracked_list_is_freed_when_broken():
    # The documented difference (docs/python.md): CPython never re-tracks a list, so a
    # cycle closed through a decoded list of atoms is not found by gc.collect(); it is
    # freed as soon as the caller breaks it.
    import gc
    import weakref

    class Marker:
        pass

    store = kvdex.SimpleKVStore()
    store.put("k", {"ids": ["a", "b"]})
    value = store.get("k")
    ids = value["ids"]
    marker = Marker()
    marker.back = ids
    ids.append(marker)  # ids -> marker -> ids
    alive = weakref.ref(marker)
    del value, marker
    gc.collect()
    assert alive() is not None  # not collected while the cycle stands
    alive().back = None  # broken: reference counting frees it at once
    del ids
    assert alive() is None
