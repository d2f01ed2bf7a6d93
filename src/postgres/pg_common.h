// Pieces shared by the synchronous and asynchronous halves of the PostgreSQL
// backend: libpq handles, error translation, connecting, statement text and the
// building of a WriteBatch into upsert/delete commands.
#ifndef KVDEX_SRC_POSTGRES_PG_COMMON_H_
#define KVDEX_SRC_POSTGRES_PG_COMMON_H_

#include <libpq-fe.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kvdex/error.h"
#include "kvdex/postgres_kvstore.h"
#include "kvdex/write_batch.h"

namespace kvdex::detail {

struct PgConnDeleter {
  void operator()(PGconn* conn) const noexcept { PQfinish(conn); }
};
using PgConn = std::unique_ptr<PGconn, PgConnDeleter>;

struct PgResultDeleter {
  void operator()(PGresult* result) const noexcept { PQclear(result); }
};
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;

// A failure that a fresh connection may cure (the server restarted, the backend was
// terminated, the server is starting up). `error` is what the caller gets once the
// retries are spent.
struct RetryableFailure {
  Error error;
};

// What the store knows about its server and table, fixed at construction.
struct PgTarget {
  std::string conninfo;
  std::string server;           // host:port, for messages
  std::string qualified_table;  // "schema"."data_table"
  bool jsonb = false;
  PostgresOptions options;
};

// Opens one connection (blocking), UTF8 client encoding, notices silenced,
// statement_timeout set. Throws RetryableFailure when the server cannot be reached,
// Error for refused credentials (kPermissionDenied) or a missing database (kNotFound).
PgConn pg_connect(const PgTarget& target);

// Translates a failed result (or a null one) into an Error or RetryableFailure and
// throws it. `what` names the operation ("get of key 'k' in collection 'c'").
[[noreturn]] void throw_pg_failure(PGconn* conn, const PGresult* result, const PgTarget& target,
                                   std::string_view what);

// Whether a connection can still be used after `result` failed.
bool pg_connection_broken(PGconn* conn, const PGresult* result);

// PostgreSQL's quoting of an identifier (double quotes, inner ones doubled).
std::string quote_identifier(std::string_view name);

// Statement text for `target`'s table.
std::string sql_get(const PgTarget& target);
std::string sql_remove(const PgTarget& target);
std::string sql_scan(const PgTarget& target);
std::string sql_count(const PgTarget& target);
// $1 the namespace; row r's key and value are $(2r+2) and $(2r+3).
std::string sql_upsert(const PgTarget& target, std::size_t rows);

inline constexpr const char* kGetStatement = "kvdex_get";
inline constexpr const char* kRemoveStatement = "kvdex_remove";
inline constexpr const char* kScanStatement = "kvdex_scan";
inline constexpr const char* kCountStatement = "kvdex_count";

// One statement with its parameters, in binary format (raw bytes for varchar and
// json, a version byte before the text for jsonb), kept alive by the command.
struct PgCommand {
  std::string prepared;  // a prepared statement's name, or empty for `sql`
  std::string sql;
  std::vector<std::string> owned;  // parameter bytes the command owns
  std::vector<const char*> params;
  std::vector<int> lengths;
  std::vector<int> formats;
  std::string description;      // for error messages
  bool is_prepare = false;      // PQsendPrepare `sql` as `prepared` instead of running it
  std::size_t upsert_rows = 0;  // an upsert of this many rows (its text is sql_upsert's,
                                // left empty by build_write_commands without copy_params)

  void add_param(std::string_view bytes) {
    params.push_back(bytes.data());
    lengths.push_back(static_cast<int>(bytes.size()));
    formats.push_back(1);
  }
  // Sends the command on a connection (blocking or not). Returns PQsend*'s result.
  int send(PGconn* conn) const;
};

// The commands applying `batch` in one transaction: consecutive puts to one
// collection become multi-row upserts (duplicates merged: last value, first place),
// removes become deletes. Values are checked first (NaN/Infinity, \u0000 for jsonb,
// NUL in names): Error(kInvalidArgument) naming the key. `copy_params` makes every
// command own its parameter bytes (for commands that outlive the batch).
std::vector<PgCommand> build_write_commands(const WriteBatch& batch, const PgTarget& target,
                                            bool copy_params);

// The canonical text of a value read from the table: json text as it is when already
// json.dumps text, else re-encoded (jsonb, or json written by other programs).
EncodedValue pg_read_value(std::string_view text, const PgTarget& target, std::string_view key);

// "key 'k' in collection 'c'" as messages show it.
std::string describe_key(std::string_view key, std::string_view collection);

}  // namespace kvdex::detail

#endif  // KVDEX_SRC_POSTGRES_PG_COMMON_H_
