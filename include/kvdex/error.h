// kvdex::Error — the one exception type the library throws.
//
// Every failure is reported as a kvdex::Error carrying a canonical ErrorCode and a
// message that names what was involved (file and byte offset, key and collection,
// server address). Absence is not an error: a missing key is std::nullopt / false.
//
// Thread safety: Error is an immutable value; copy it freely between threads.
#ifndef KVDEX_ERROR_H_
#define KVDEX_ERROR_H_

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

namespace kvdex {

// The one table of error codes: X(enumerator, stable number, name), each under a
// comment saying what it means.
// Everything else derives from it: the ErrorCode enum, error_code_name(),
// kAllErrorCodes, the Python exception classes (checked against it when the package
// is imported and by its tests) and the CLI's exit statuses (a switch the compiler
// checks for completeness). The numbers never change once released; new codes get
// new numbers. Callers branch on the code, never on message text; return the most
// specific code that applies (absl::StatusCode's rule).
#define KVDEX_ERROR_CODES(X)                                                                \
  /* the caller passed something unusable (not an object, bad URI, batch_size < 1) */       \
  X(kInvalidArgument, 1, "invalid_argument")                                                \
  /* a named file or store does not exist */                                                \
  X(kNotFound, 2, "not_found")                                                              \
  /* stored or persisted data is malformed (file + byte offset, or store + key) */          \
  X(kCorruption, 3, "corruption")                                                           \
  /* the operating system refused an operation (errno text in the message) */               \
  X(kIOError, 4, "io_error")                                                                \
  /* a server could not be reached or went away (host:port in the message) */               \
  X(kUnavailable, 5, "unavailable")                                                         \
  /* the store does not offer the operation (LlamaIndex's NotImplementedError) */           \
  X(kNotSupported, 6, "not_supported")                                                      \
  /* a value cannot be represented in the requested form (integer beyond 64 bits) */        \
  X(kOutOfRange, 7, "out_of_range")                                                         \
  /* a broken invariant inside kvdex; please report */                                      \
  X(kInternal, 8, "internal")                                                               \
  /* the store is not in a state that allows the call (open read-only elsewhere, closed) */ \
  X(kFailedPrecondition, 9, "failed_precondition")                                          \
  /* a limit was reached: disk full, LMDB map or reader table full, server memory */        \
  X(kResourceExhausted, 10, "resource_exhausted")                                           \
  /* what the call would create exists already (e.g. a registered URI scheme) */            \
  X(kAlreadyExists, 11, "already_exists")                                                   \
  /* a timeout expired before the operation completed (connect, command) */                 \
  X(kDeadlineExceeded, 12, "deadline_exceeded")                                             \
  /* the server or the file system refused the caller's credentials or rights */            \
  X(kPermissionDenied, 13, "permission_denied")

enum class ErrorCode : int {
#define KVDEX_ERROR_CODE_ENUMERATOR(enumerator, number, name) enumerator = number,
  KVDEX_ERROR_CODES(KVDEX_ERROR_CODE_ENUMERATOR)
#undef KVDEX_ERROR_CODE_ENUMERATOR
};

// Every code, in the table's order.
inline constexpr ErrorCode kAllErrorCodes[] = {
#define KVDEX_ERROR_CODE_ELEMENT(enumerator, number, name) ErrorCode::enumerator,
    KVDEX_ERROR_CODES(KVDEX_ERROR_CODE_ELEMENT)
#undef KVDEX_ERROR_CODE_ELEMENT
};

// Stable lower-case name of a code, e.g. "invalid_argument"; "unknown" for a number
// that is not in the table.
std::string_view error_code_name(ErrorCode code) noexcept;

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message);

  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

// The code for an errno value: kNotFound for ENOENT, kResourceExhausted for ENOSPC,
// EDQUOT, EFBIG, ENOMEM, EMFILE and ENFILE, kPermissionDenied for EACCES and EPERM,
// kIOError for the rest. The one place errno becomes a code (LevelDB's PosixError).
ErrorCode error_code_for_errno(int errnum) noexcept;

// Throws Error(error_code_for_errno(errnum), "<what> '<path>': <strerror(errnum)>"),
// so callers can tell a missing file or a full disk from a failing one.
[[noreturn]] void throw_errno(int errnum, std::string_view what, std::string_view path);

// Keys and collection names may be megabytes long: error messages show their start.
inline constexpr std::size_t kMaxShownBytes = 120;

// `text` as an error message shows it: unchanged up to kMaxShownBytes bytes, else
// its first kMaxShownBytes bytes (fewer, so as not to cut a UTF-8 character in two)
// followed by "...(N bytes)", N the full size. The one shortening every kvdex
// message uses.
std::string shorten_for_message(std::string_view text);

}  // namespace kvdex

#endif  // KVDEX_ERROR_H_
