#include "kvdex/error.h"

#include <cerrno>
#include <cstring>

namespace kvdex {

std::string_view error_code_name(ErrorCode code) noexcept {
  switch (code) {
#define KVDEX_ERROR_CODE_CASE(enumerator, number, name) \
  case ErrorCode::enumerator:                           \
    return name;
    KVDEX_ERROR_CODES(KVDEX_ERROR_CODE_CASE)
#undef KVDEX_ERROR_CODE_CASE
  }
  return "unknown";
}

Error::Error(ErrorCode code, const std::string& message)
    : std::runtime_error(message), code_(code) {}

ErrorCode error_code_for_errno(int errnum) noexcept {
  switch (errnum) {
    case ENOENT:
      return ErrorCode::kNotFound;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:  // past the process's file-size limit (ulimit -f): a quota
    case ENOMEM:
    case EMFILE:
    case ENFILE:
      return ErrorCode::kResourceExhausted;
    case EACCES:
    case EPERM:
      return ErrorCode::kPermissionDenied;
    default:
      return ErrorCode::kIOError;
  }
}

void throw_errno(int errnum, std::string_view what, std::string_view path) {
  char buf[256];
  // GNU strerror_r returns the message, which may not be buf.
  const char* reason = strerror_r(errnum, buf, sizeof buf);
  throw Error(error_code_for_errno(errnum),
              std::string(what) + " '" + std::string(path) + "': " + reason);
}

std::string shorten_for_message(std::string_view text) {
  if (text.size() <= kMaxShownBytes) return std::string(text);
  std::size_t shown = kMaxShownBytes;
  // Back off continuation bytes (10xxxxxx) to the start of the character they belong to.
  for (int back = 0; back < 3 && (static_cast<unsigned char>(text[shown]) & 0xC0) == 0x80; ++back)
    --shown;
  return std::string(text.substr(0, shown)) + "...(" + std::to_string(text.size()) + " bytes)";
}

}  // namespace kvdex
