"""kvdex::Error codes become kvdex exceptions that also inherit the natural builtin,
with the C++ message."""

from __future__ import annotations

import pytest

import kvdex
from kvdex import _native

EXPECTED = {
    "invalid_argument": (kvdex.InvalidArgumentError, ValueError),
    "not_found": (kvdex.NotFoundError, FileNotFoundError),
    "corruption": (kvdex.CorruptionError, ValueError),
    "io_error": (kvdex.KvdexIOError, OSError),
    "unavailable": (kvdex.UnavailableError, ConnectionError),
    "not_supported": (kvdex.NotSupportedError, NotImplementedError),
    "out_of_range": (kvdex.OutOfRangeError, OverflowError),
    "internal": (kvdex.InternalError, RuntimeError),
    "failed_precondition": (kvdex.FailedPreconditionError, RuntimeError),
    "resource_exhausted": (kvdex.ResourceExhaustedError, OSError),
    "already_exists": (kvdex.AlreadyExistsError, ValueError),
    "deadline_exceeded": (kvdex.DeadlineExceededError, TimeoutError),
    "permission_denied": (kvdex.PermissionDeniedError, PermissionError),
}

# The stable numbers of kvdex/error.h: a released number never changes meaning.
STABLE_NUMBERS = {
    "invalid_argument": 1,
    "not_found": 2,
    "corruption": 3,
    "io_error": 4,
    "unavailable": 5,
    "not_supported": 6,
    "out_of_range": 7,
    "internal": 8,
    "failed_precondition": 9,
    "resource_exhausted": 10,
    "already_exists": 11,
    "deadline_exceeded": 12,
    "permission_denied": 13,
}


def test_every_code_has_a_class():
    assert sorted(_native._error_codes()) == sorted(EXPECTED)
    assert sorted(kvdex.exceptions.BY_CODE) == sorted(_native._error_codes())


def test_code_numbers_are_stable():
    assert dict(_native._error_codes()) == STABLE_NUMBERS


def test_every_class_is_exported():
    for cls in kvdex.exceptions.BY_CODE.values():
        assert getattr(kvdex, cls.__name__) is cls
        assert cls.__name__ in kvdex.exceptions.__all__


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_code_maps_to_class_and_builtin(code):
    cls, builtin = EXPECTED[code]
    with pytest.raises(cls) as info:
        _native._raise_error(code, f"message for {code}")
    error = info.value
    assert type(error) is cls
    assert isinstance(error, kvdex.Error) and isinstance(error, builtin)
    assert error.code == code
    assert str(error) == f"message for {code}"


def test_out_of_range_is_also_a_value_error():
    assert issubclass(kvdex.OutOfRangeError, ValueError)


def test_missing_file_is_not_found(tmp_path):
    path = tmp_path / "missing.json"
    with pytest.raises(FileNotFoundError) as info:
        kvdex.SimpleKVStore.from_persist_path(str(path))
    assert isinstance(info.value, kvdex.NotFoundError)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "expecting value"),
        ('{"c": {"k": {"a": 1,}}}', "byte 20"),
        ('{"c": [1]}', "collection \"c\" is not a JSON object"),
        ('{"c": {"k": 5}}', "is not a JSON object"),
        ('{"c": {}} extra', "extra data"),
    ],
)
def test_malformed_file_is_corruption_with_offset(tmp_path, text, fragment):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(kvdex.CorruptionError) as info:
        kvdex.SimpleKVStore.from_persist_path(str(path))
    assert isinstance(info.value, ValueError)
    assert str(path) in str(info.value)
    assert fragment in str(info.value)


def test_failing_write_is_io_error_and_keeps_the_old_file(tmp_path):
    store = kvdex.SimpleKVStore()
    store.put("k", {"v": 1})
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(kvdex.KvdexIOError) as info:
        store.persist(str(blocker / "kv.json"))  # a path under a regular file
    assert isinstance(info.value, OSError)
    assert blocker.read_text() == "not a directory"


def test_errors_can_be_caught_as_kvdex_error():
    with pytest.raises(kvdex.Error):
        kvdex.SimpleKVStore().put_all([], batch_size=0)
