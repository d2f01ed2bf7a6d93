#include "kvdex/error.h"

#include <cerrno>
#include <cstring>

namespace kvdex {

std::string_view error_code_name(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kCorruption:
      return "corruption";
    case ErrorCode::kIOError:
      return "io_error";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kNotSupported:
      return "not_supported";
    case ErrorCode::kOutOfRange:
      return "out_of_range";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "unknown";
}

Error::Error(ErrorCode code, const std::string& message)
    : std::runtime_error(message), code_(code) {}

void throw_errno(int errnum, std::string_view what, std::string_view path) {
  char buf[256];
  // GNU strerror_r returns the message, which may not be buf.
  const char* reason = strerror_r(errnum, buf, sizeof buf);
  throw Error(errnum == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIOError,
              std::string(what) + " '" + std::string(path) + "': " + reason);
}

}  // namespace kvdex
