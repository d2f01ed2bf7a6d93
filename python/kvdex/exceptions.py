"""kvdex's exceptions.

Every error kvdex raises is a ``kvdex.Error``; each subclass also inherits the
builtin exception a Python program would naturally catch, so existing
``except ValueError`` / ``except FileNotFoundError`` / ``except OSError`` code keeps
working. The message is the C++ library's, naming the file, byte offset, key or
collection involved. ``code`` is the C++ error code's name.
"""

from __future__ import annotations

__all__ = [
    "Error",
    "InvalidArgumentError",
    "NotFoundError",
    "CorruptionError",
    "KvdexIOError",
    "UnavailableError",
    "NotSupportedError",
    "OutOfRangeError",
    "InternalError",
    "FailedPreconditionError",
    "ResourceExhaustedError",
    "AlreadyExistsError",
    "DeadlineExceededError",
    "PermissionDeniedError",
]


class Error(Exception):
    """Base class of every kvdex error."""

    code: str = ""


class InvalidArgumentError(Error, ValueError):
    """The caller passed something unusable (a value that is not a dict, batch_size < 1, a bad URI)."""

    code = "invalid_argument"


class NotFoundError(Error, FileNotFoundError):
    """A named file or store does not exist."""

    code = "not_found"


class CorruptionError(Error, ValueError):
    """Stored or persisted data is malformed (the message names the file and byte offset)."""

    code = "corruption"


class KvdexIOError(Error, OSError):
    """The operating system refused an operation (the message carries its reason)."""

    code = "io_error"


class UnavailableError(Error, ConnectionError):
    """A server could not be reached or went away (the message names host:port)."""

    code = "unavailable"


class NotSupportedError(Error, NotImplementedError):
    """The store does not offer this operation (e.g. writing to a read-only store)."""

    code = "not_supported"


class OutOfRangeError(Error, OverflowError, ValueError):
    """A value cannot be represented in the requested form."""

    code = "out_of_range"


class InternalError(Error, RuntimeError):
    """A broken invariant inside kvdex; please report it."""

    code = "internal"


class FailedPreconditionError(Error, RuntimeError):
    """The store is not in a state that allows the call (e.g. open read-only elsewhere, closed)."""

    code = "failed_precondition"


class ResourceExhaustedError(Error, OSError):
    """A limit was reached: a full disk, LMDB's map or reader table, a server's memory."""

    code = "resource_exhausted"


class AlreadyExistsError(Error, ValueError):
    """What the call would create exists already (e.g. a registered URI scheme)."""

    code = "already_exists"


class DeadlineExceededError(Error, TimeoutError):
    """A timeout expired before the operation completed (connecting, a command)."""

    code = "deadline_exceeded"


class PermissionDeniedError(Error, PermissionError):
    """The server or the file system refused the caller's credentials or rights."""

    code = "permission_denied"


# One class per C++ ErrorCode (kvdex/error.h), by the code's name. The native module
# refuses to import unless every code in its table has a class here, and
# python/tests/test_errors.py checks the reverse.
BY_CODE = {
    cls.code: cls
    for cls in (
        InvalidArgumentError,
        NotFoundError,
        CorruptionError,
        KvdexIOError,
        UnavailableError,
        NotSupportedError,
        OutOfRangeError,
        InternalError,
        FailedPreconditionError,
        ResourceExhaustedError,
        AlreadyExistsError,
        DeadlineExceededError,
        PermissionDeniedError,
    )
}
