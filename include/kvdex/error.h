// kvdex::Error — the one exception type the library throws.
//
// Every failure is reported as a kvdex::Error carrying a canonical ErrorCode and a
// message that names what was involved (file and byte offset, key and collection,
// server address). Absence is not an error: a missing key is std::nullopt / false.
//
// Thread safety: Error is an immutable value; copy it freely between threads.
#ifndef KVDEX_ERROR_H_
#define KVDEX_ERROR_H_

#include <stdexcept>
#include <string>
#include <string_view>

namespace kvdex {

// Canonical error codes, in the spirit of absl::StatusCode. Callers branch on the
// code, never on message text. The Python package maps each to an exception that
// also inherits the natural builtin; the CLI maps each to an exit status.
enum class ErrorCode {
  kInvalidArgument,  // the caller passed something unusable (not an object, bad URI, batch_size <
                     // 1)
  kNotFound,         // a named file or store does not exist
  kCorruption,       // stored or persisted data is malformed (file + byte offset in the message)
  kIOError,          // the operating system refused an operation (errno text in the message)
  kUnavailable,      // a server could not be reached or went away
  kNotSupported,     // the operation is not offered by this store (as LlamaIndex's
                     // NotImplementedError)
  kOutOfRange,  // a value cannot be represented in the requested form (e.g. integer beyond 64 bits)
  kInternal,    // a broken invariant inside kvdex; please report
};

// Stable lower-case name of a code, e.g. "invalid_argument".
std::string_view error_code_name(ErrorCode code) noexcept;

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message);

  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

// Builds an IOError from errno: "<what> '<path>': <strerror(errnum)>". NotFound when
// errnum is ENOENT, so callers can tell a missing file from a failing disk.
[[noreturn]] void throw_errno(int errnum, std::string_view what, std::string_view path);

}  // namespace kvdex

#endif  // KVDEX_ERROR_H_
