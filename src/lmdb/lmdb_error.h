// The one place where LMDB return codes become kvdex::Error, so every LMDB failure
// gets the same code and message shape wherever it happens.
#ifndef KVDEX_SRC_LMDB_LMDB_ERROR_H_
#define KVDEX_SRC_LMDB_LMDB_ERROR_H_

#include <string>
#include <string_view>

#include "kvdex/error.h"

namespace kvdex::detail {

// What an error message names.
struct LmdbErrorContext {
  std::string_view path;        // the store's directory
  std::string_view collection;  // empty when no collection is involved
  bool has_collection = false;  // collection names may be empty strings

  LmdbErrorContext with_collection(std::string_view name) const {
    LmdbErrorContext copy = *this;
    copy.collection = name;
    copy.has_collection = true;
    return copy;
  }
};

// Thrown for MDB_MAP_FULL inside a write transaction; the write loop catches it,
// grows the map and retries. It is a kvdex::Error saying what happened
// (kResourceExhausted) so that one escaping by a bug still keeps the
// one-exception-type rule and the right code.
class LmdbMapFull : public Error {
 public:
  explicit LmdbMapFull(const std::string& message)
      : Error(ErrorCode::kResourceExhausted, message) {}
};

// Translates `rc` (an MDB_* code or an errno value) for `operation`:
//   MDB_NOTFOUND -> kNotFound; MDB_CORRUPTED, MDB_PAGE_NOTFOUND, MDB_INVALID,
//   MDB_INCOMPATIBLE -> kCorruption; MDB_VERSION_MISMATCH -> kNotSupported;
//   MDB_BAD_VALSIZE (value too large) -> kInvalidArgument; MDB_TXN_FULL (batch too
//   large), MDB_READERS_FULL -> kResourceExhausted; MDB_MAP_FULL -> LmdbMapFull; MDB_PANIC ->
//   kIOError; other MDB_* codes (bad handles, bad transactions, MDB_DBS_FULL: kvdex uses two named
//   databases whatever the number of collections) and EINVAL -> kInternal; any other errno value ->
//   error_code_for_errno (ENOSPC -> kResourceExhausted, EACCES -> kPermissionDenied, ENOENT ->
//   kNotFound, EIO -> kIOError, ...).
// The message is "lmdb store '<path>'[, collection '<name>']: <operation>: <reason>",
// the reason being LMDB's text, or the operating system's for an errno value.
[[noreturn]] void throw_lmdb_error(int rc, std::string_view operation,
                                   const LmdbErrorContext& context);

// A kCorruption error in the same message format.
[[noreturn]] void throw_lmdb_corruption(std::string_view what, const LmdbErrorContext& context);

// The message prefix "lmdb store '<path>'[, collection '<name>']".
std::string lmdb_error_subject(const LmdbErrorContext& context);

}  // namespace kvdex::detail

#endif  // KVDEX_SRC_LMDB_LMDB_ERROR_H_
