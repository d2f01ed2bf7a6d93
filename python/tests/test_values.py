"""Values: the binding writes exactly what json.dumps writes and reads back what
json.loads reads, without going through the json module."""

from __future__ import annotations

import enum
import json
import math
import random
import sys

import pytest

import kvdex
from kvdex import _native


class MyStr(str):
    pass


class MyInt(int):
    def __repr__(self):  # json uses int.__repr__, not this
        return "MyInt!"


class MyFloat(float):
    def __repr__(self):
        return "MyFloat!"


class Color(enum.IntEnum):
    RED = 1


class ItemsDict(dict):
    def items(self):  # json.dumps asks a dict subclass for items()
        return [("only", "this")]


EDGE_VALUES = [
    {},
    {"a": None, "b": True, "c": False},
    {"s": "plain", "e": "", "q": 'quote " backslash \\ slash /'},
    {"ctrl": "\x00\x01\x1f\x7f\n\r\t\b\f", "del": "\x7f"},
    {"uni": "Zürich Ελληνικά 日本語 🚀✨", "bmp": "\u2028\u2029\ufeff\uffff"},
    {"lone": "\ud800", "low": "\udfff", "pair_as_two": "\ud83d\ude80x"},
    {"latin1": "\xe9\xff\x80"},
    {"ints": [0, -0, 1, -1, 2**31, 2**63 - 1, -(2**63), 2**63, 2**64, -(2**64) - 1, 10**100]},
    {"floats": [0.0, -0.0, 1.0, -1.5, 0.1, 1e-05, 1e-07, 1e16, 1e+16, 1.5e300, 5e-324,
                2.2250738585072014e-308, 1.7976931348623157e308, 123456789.123456789, 1e22, 1e-4]},
    {"special": [float("nan"), float("inf"), float("-inf")]},
    {"nested": {"list": [1, [2, [3, {"x": [{}]}]]], "empty": [], "emptyd": {}}},
    {"tuple": (1, 2, (3,)), "list_of_tuples": [(1, "a")]},
    {MyStr("k"): MyStr("v"), "i": MyInt(5), "f": MyFloat(2.5), "e": Color.RED},
    {1: "int key", 2.5: "float key", True: "bool key", None: "none key", -3: "neg"},
    {float("nan"): 1, float("inf"): 2, 1e16: 3, 10**30: 4},
    {"key with \u00e9 and \ud83d\ude80": 1, "\ud800": 2},
    {"deep": [[[[[[[[[[{"x": 1}]]]]]]]]]]},
]


@pytest.mark.parametrize("value", EDGE_VALUES, ids=range(len(EDGE_VALUES)))
def test_dumps_matches_json_dumps(value):
    assert _native._dumps(value) == json.dumps(value)


@pytest.mark.parametrize("value", EDGE_VALUES, ids=range(len(EDGE_VALUES)))
def test_round_trip_is_json_loads_of_json_dumps(value):
    store = kvdex.SimpleKVStore()
    store.put("k", value)
    got = store.get("k")
    expected = json.loads(json.dumps(value))
    # NaN != NaN: compare the JSON text of both, then the types.
    assert json.dumps(got) == json.dumps(expected)
    assert _same_types(got, expected)


def _same_types(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same_types(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same_types(x, y) for x, y in zip(a, b))
    return True


def _random_value(rng: random.Random, depth: int = 0):
    kinds = ["int", "bigint", "float", "str", "bool", "none"]
    if depth < 4:
        kinds += ["list", "dict", "dict"]
    kind = rng.choice(kinds)
    if kind == "int":
        return rng.randint(-(2**63), 2**63)
    if kind == "bigint":
        return rng.randint(-(10**40), 10**40)
    if kind == "float":
        choice = rng.random()
        if choice < 0.1:
            return rng.choice([float("nan"), float("inf"), -0.0, 0.0])
        if choice < 0.5:
            return rng.uniform(-1e6, 1e6)
        return rng.choice([-1, 1]) * math.ldexp(rng.random(), rng.randint(-1074, 1023))
    if kind == "str":
        return "".join(chr(rng.choice([rng.randint(0, 0x7F), rng.randint(0x80, 0xFFFF),
                                       rng.randint(0x10000, 0x10FFFF)]))
                       for _ in range(rng.randint(0, 12)))
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "none":
        return None
    if kind == "list":
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 5))]
    return {"".join(chr(rng.randint(0x20, 0x2FF)) for _ in range(rng.randint(0, 6))):
            _random_value(rng, depth + 1) for _ in range(rng.randint(0, 5))}


def test_random_values_match_json():
    rng = random.Random(7)
    store = kvdex.SimpleKVStore()
    for i in range(2000):
        value = {"v": _random_value(rng)}
        text = json.dumps(value)
        assert _native._dumps(value) == text
        store.put(str(i), value)
        assert json.dumps(store.get(str(i))) == text


def test_colliding_keys_follow_json_loads():
    value = {1: "a", "1": "b", "x": 0, "2": "c", 2: "d"}
    store = kvdex.SimpleKVStore()
    store.put("k", value)
    assert store.get("k") == json.loads(json.dumps(value)) == {"1": "b", "x": 0, "2": "d"}


def test_dict_subclass_items_is_used_like_json():
    assert _native._dumps({"d": ItemsDict(a=1)}) == json.dumps({"d": ItemsDict(a=1)})


@pytest.mark.parametrize(
    "value",
    [{"s": {1, 2}}, {"b": b"bytes"}, {"o": object()}, {"c": 1j}, {"n": [kvdex]}],
    ids=["set", "bytes", "object", "complex", "module"],
)
def test_unserializable_is_json_type_error(value):
    with pytest.raises(TypeError) as ours:
        kvdex.SimpleKVStore().put("k", value)
    with pytest.raises(TypeError) as theirs:
        json.dumps(value)
    assert str(ours.value) == str(theirs.value)


def test_bad_key_type_is_json_type_error():
    value = {(1, 2): "tuple key"}
    with pytest.raises(TypeError) as ours:
        _native._dumps(value)
    with pytest.raises(TypeError) as theirs:
        json.dumps(value)
    assert str(ours.value) == str(theirs.value)


def test_circular_reference_is_value_error():
    value: dict = {"a": []}
    value["a"].append(value)
    with pytest.raises(ValueError, match="Circular reference detected"):
        kvdex.SimpleKVStore().put("k", value)
    shared = [1]
    # The same object twice (not a cycle) is fine, as in json.
    assert _native._dumps({"x": shared, "y": shared}) == '{"x": [1], "y": [1]}'


def test_deep_nesting_is_recursion_error():
    value: list = []
    for _ in range(sys.getrecursionlimit() + 100):
        value = [value]
    with pytest.raises(RecursionError):
        kvdex.SimpleKVStore().put("k", {"v": value})


def test_huge_int_limit_is_pythons():
    if not hasattr(sys, "get_int_max_str_digits"):
        pytest.skip("no int digit limit in this Python")
    big = 10 ** (sys.get_int_max_str_digits() + 10)
    with pytest.raises(ValueError):
        json.dumps({"x": big})
    with pytest.raises(ValueError):
        kvdex.SimpleKVStore().put("k", {"x": big})


def test_value_must_be_a_dict():
    store = kvdex.SimpleKVStore()
    for bad in ([1], "text", 1, None, (("a", 1),)):
        with pytest.raises(kvdex.InvalidArgumentError, match="value must be a JSON object"):
            store.put("k", bad)
    assert store.get("k") is None


def test_get_returns_an_independent_copy():
    store = kvdex.SimpleKVStore()
    original = {"list": [1, 2], "nested": {"x": 1}}
    store.put("k", original)
    original["list"].append(3)  # the caller's object does not reach the store
    first = store.get("k")
    first["list"].append(99)
    first["nested"]["x"] = 2
    first["new"] = 1
    second = store.get("k")
    assert second == {"list": [1, 2], "nested": {"x": 1}}
    assert second is not first and second["list"] is not first["list"]
    all_values = store.get_all()
    all_values["k"]["list"].clear()
    assert store.get("k")["list"] == [1, 2]
    d = store.to_dict()
    d["data"]["k"]["nested"]["x"] = 5
    assert store.get("k")["nested"]["x"] == 1


def test_keys_and_collections_keep_any_str():
    store = kvdex.SimpleKVStore()
    names = ["", "ключ", "🚀", "\ud800lone", "a/b", "x" * 10_000]
    for name in names:
        store.put(name, {"v": name}, collection=name)
    for name in names:
        assert store.get(name, collection=name) == {"v": name}
        assert list(store.get_all(name)) == [name]
    assert store.collections() == names
    text = store.to_json_text()
    assert text == json.dumps({n: {n: {"v": n}} for n in names})


def test_keys_must_be_str():
    store = kvdex.SimpleKVStore()
    with pytest.raises(TypeError, match="key must be str"):
        store.put(1, {})
    with pytest.raises(TypeError, match="collection must be str"):
        store.get("k", collection=None)


def test_big_ints_survive_persist(tmp_path):
    store = kvdex.SimpleKVStore()
    store.put("k", {"big": 2**200, "neg": -(10**50)})
    path = tmp_path / "kv.json"
    store.persist(str(path))
    assert kvdex.SimpleKVStore.from_persist_path(str(path)).get("k") == {"big": 2**200, "neg": -(10**50)}


def test_keys_that_collide_as_json_are_all_written_as_json_dumps_writes_them(tmp_path):
    value = {1: "a", "1": "b"}
    assert _native._dumps(value) == json.dumps(value) == '{"1": "a", "1": "b"}'
    store = kvdex.SimpleKVStore()
    store.put("k", value)
    path = tmp_path / "s.json"
    store.persist(str(path))
    assert path.read_text() == json.dumps({"data": {"k": value}})
    assert store.get("k") == json.loads(json.dumps(value)) == {"1": "b"}


def test_values_nest_at_most_as_deep_as_a_persist_file_allows():
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(5000)
    try:
        value: dict = {}
        for _ in range(897):
            value = {"d": value}
        kvdex.SimpleKVStore().put("k", value)  # 898 levels
        with pytest.raises(RecursionError):
            kvdex.SimpleKVStore().put("k", {"d": value})
    finally:
        sys.setrecursionlimit(old)


def test_int_digit_limit_follows_sys_at_load(tmp_path):
    if not hasattr(sys, "get_int_max_str_digits"):
        pytest.skip("no int digit limit in this Python")
    path = tmp_path / "big.json"
    path.write_text('{"data": {"k": {"v": ' + "7" * 5000 + "}}}")
    with pytest.raises(kvdex.CorruptionError, match="value has 5000 digits at byte 21"):
        kvdex.SimpleKVStore.from_persist_path(str(path))
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        store = kvdex.SimpleKVStore.from_persist_path(str(path))
        assert store.get("k") == {"v": int("7" * 5000)}
    finally:
        sys.set_int_max_str_digits(old)


def test_bom_is_read_as_json_loads_reads_str_and_bytes():
    text = '\ufeff{"data": {}}'
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(kvdex.CorruptionError, match="Unexpected UTF-8 BOM"):
        kvdex.SimpleKVStore.from_json_text(text)
    assert json.loads(text.encode()) == {"data": {}}
    assert kvdex.SimpleKVStore.from_json_text(text.encode()).to_dict() == {"data": {}}
