#include "lmdb/lmdb_error.h"

#include <lmdb.h>

#include <cerrno>
#include <cstring>

#include "core/json_codec.h"

namespace kvdex::detail {
namespace {

// Collection names may be megabytes long; messages show the start, and a name that
// is not UTF-8 (damage) with its bad bytes as \xHH.
std::string shorten(std::string_view name) { return escape_for_message(name); }

}  // namespace

std::string lmdb_error_subject(const LmdbErrorContext& context) {
  std::string out = "lmdb store '" + std::string(context.path) + "'";
  if (context.has_collection) out += ", collection '" + shorten(context.collection) + "'";
  return out;
}

void throw_lmdb_error(int rc, std::string_view operation, const LmdbErrorContext& context) {
  ErrorCode code = ErrorCode::kIOError;
  std::string hint;
  switch (rc) {
    case MDB_NOTFOUND:
      code = ErrorCode::kNotFound;
      break;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
      code = ErrorCode::kCorruption;
      break;
    case MDB_INCOMPATIBLE:
      code = ErrorCode::kCorruption;
      hint = " (a database name clashes with data of another kind)";
      break;
    case MDB_VERSION_MISMATCH:
      code = ErrorCode::kNotSupported;
      hint = " (the store was written by an incompatible LMDB version)";
      break;
    case MDB_TXN_FULL:
      code = ErrorCode::kResourceExhausted;
      hint = " (the batch is too large for one LMDB transaction; use a smaller batch_size)";
      break;
    case MDB_BAD_VALSIZE:
      code = ErrorCode::kInvalidArgument;
      hint = " (LMDB stores values of at most 4 GiB)";
      break;
    case MDB_READERS_FULL:
      code = ErrorCode::kResourceExhausted;
      hint = " (every reader slot is in use by live readers; raise LmdbOptions::max_readers)";
      break;
    case MDB_MAP_FULL:
      throw LmdbMapFull(lmdb_error_subject(context) + ": " + std::string(operation) + ": " +
                        mdb_strerror(rc));
    case MDB_PANIC:
      code = ErrorCode::kIOError;
      hint = " (LMDB hit a fatal error; close and reopen the store)";
      break;
    case MDB_KEYEXIST:
    case MDB_TLS_FULL:
    case MDB_CURSOR_FULL:
    case MDB_PAGE_FULL:
    case MDB_MAP_RESIZED:
    case MDB_BAD_RSLOT:
    case MDB_BAD_TXN:
    case MDB_BAD_DBI:
    case MDB_DBS_FULL:
    case EINVAL:
      code = ErrorCode::kInternal;
      break;
    default: {
      if (rc <= 0) break;  // an LMDB code newer than this switch: kIOError
      // An errno value from the operating system: its own words, thread-safely
      // (mdb_strerror calls strerror, which may share a buffer between threads).
      char buf[256];
      const char* reason = strerror_r(rc, buf, sizeof buf);  // GNU: may not be buf
      throw Error(error_code_for_errno(rc),
                  lmdb_error_subject(context) + ": " + std::string(operation) + ": " + reason);
    }
  }
  throw Error(code, lmdb_error_subject(context) + ": " + std::string(operation) + ": " +
                        mdb_strerror(rc) + hint);
}

void throw_lmdb_corruption(std::string_view what, const LmdbErrorContext& context) {
  throw Error(ErrorCode::kCorruption, lmdb_error_subject(context) + ": " + std::string(what));
}

}  // namespace kvdex::detail
