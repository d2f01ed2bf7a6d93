// PostgresKVStore — LlamaIndex's PostgreSQL key-value table, on libpq
// (URIs "postgresql://..." and "postgres://...").
//
//   kvdex::PostgresKVStore store("host=127.0.0.1 port=5432 dbname=app user=app",
//                                {.table_name = "docstore", .use_jsonb = false});
//   store.put_all(pairs, "docstore/data", /*batch_size=*/1000);   // one transaction a batch
//   std::optional<kvdex::Value> v = store.get("node-1", "docstore/data");
//   auto same = kvdex::open("postgresql://app@127.0.0.1/app?table_name=docstore&pool=8");
//
// Table: exactly the one LlamaIndex's PostgresKVStore (llama-index-storage-kvstore-
// postgres) creates, so both read and write the same rows:
//   "{schema_name}"."data_{table_name}" (defaults public.data_kvstore; both names
//   lower-cased as LlamaIndex does, ASCII letters only here: the Python class lower-
//   cases with str.lower() first), columns id SERIAL PRIMARY KEY, key VARCHAR NOT
//   NULL, namespace VARCHAR NOT NULL (the collection), value JSON (JSONB with
//   use_jsonb), constraint "data_{table_name}:unique_key_namespace" UNIQUE (key,
//   namespace) and index "data_{table_name}:idx_key_namespace" on (key, namespace).
// With perform_setup the schema, table and index are created when missing (under an
// advisory lock, so concurrent openers do not race); an existing table is used as it
// is, and the type of its value column (json or jsonb), not use_jsonb, decides how
// values are read back.
//
// Values: a json column keeps the text it is given, so get returns byte for byte the
// json.dumps text that was put (kvdex's EncodedValue, LlamaIndex's json.dumps). A
// jsonb column keeps PostgreSQL's own form (keys sorted by length, duplicates
// dropped, non-ASCII unescaped): get returns an equal value, re-encoded as json.dumps
// would write it, but byte identity and key order hold for json columns only.
// PostgreSQL cannot store some things Python can: NaN and Infinity in either column
// type, \u0000 in jsonb, NUL bytes in keys and collection names; such a put is
// Error(kInvalidArgument) naming the key, and get/remove of a name holding NUL finds
// nothing.
//
// Statements: every key, collection and value is a bound parameter (text format);
// every identifier is quoted. An identifier longer than 63 bytes (PostgreSQL would
// silently truncate it, and then two table names could meet) is Error(kInvalidArgument):
// table_name may be at most 37 bytes, as "data_{table_name}:unique_key_namespace"
// must fit.
//
// Operations: write(batch) / put_all send each batch as multi-row
// INSERT ... ON CONFLICT (key, namespace) DO UPDATE statements (and DELETEs) in one
// implicit transaction (libpq's pipeline mode: one round trip), so a batch is applied
// whole or not at all; duplicate keys inside a batch are merged first (the last value
// wins, the first position is kept, as a dict would). get/remove are one prepared
// statement each; get_all and scan stream rows in insertion order (ORDER BY id) in
// libpq's single-row mode, so memory does not grow with the collection; count is
// count(*); collections() lists the distinct namespaces in the order of their oldest
// row.
//
// Connections: synchronous calls take a connection from a bounded pool
// (PostgresOptions::pool_size; a caller waits when all are busy). Asynchronous calls
// (aget_encoded, aremove, awrite, aput_all_encoded, aget_all_encoded) run on
// PostgresOptions::event_loop_threads threads of the store, each owning non-blocking
// connections in pipeline mode: concurrent aget calls are queued back to back on a
// few connections, and their futures are completed from those threads (no thread per
// call; callbacks must be quick and must not block on the store).
//
// Failures: a broken connection (server restarted, backend terminated) is dropped
// and the call retried on a fresh one, up to connect_retries times with growing
// pauses; after that the call is Error(kUnavailable) naming host:port, and the next
// call connects again by itself. A batch whose transaction was cut off was rolled
// back by the server, so retrying it cannot apply it twice; retried upserts are
// idempotent, but a retried remove whose first attempt was committed just before the
// connection broke reports false. statement_timeout expiring is
// Error(kDeadlineExceeded); bad credentials kPermissionDenied; a missing table with
// perform_setup off kNotFound; values the column refuses kInvalidArgument.
//
// Thread safety: every method may be called concurrently from many threads. Callbacks
// passed to scan() run while a pooled connection streams the rows and must not call
// back into the store (close(): see below). A future's callback runs on an event-loop
// thread, which may be the one that must complete the store's other pending
// operations: it must not destroy the store while others are pending (the destructor
// would wait for work only that thread can do); hand the destruction to another thread.
#ifndef KVDEX_POSTGRES_KVSTORE_H_
#define KVDEX_POSTGRES_KVSTORE_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kvdex/kvstore.h"

namespace kvdex {

namespace detail {
class PostgresBackend;
struct AsyncRequest;
}  // namespace detail

// Options of a PostgresKVStore; in URIs each is a query parameter of the same name
// (pool for pool_size, statement_timeout in milliseconds), removed before the rest
// of the URI goes to libpq.
struct PostgresOptions {
  std::string table_name = "kvstore";  // the table is data_{table_name}
  std::string schema_name = "public";
  bool use_jsonb = false;     // the value column type when the table is created
  bool perform_setup = true;  // create schema, table and index when missing
  std::size_t pool_size = 8;  // connections for synchronous calls, 1 to 1024
  // Event-loop threads and the non-blocking connections they share, for the
  // asynchronous calls. 1 to 64 threads; async_connections >= event_loop_threads.
  std::size_t event_loop_threads = 1;
  std::size_t async_connections = 2;
  // 0: the server's default. Passed to every connection as SET statement_timeout.
  std::chrono::milliseconds statement_timeout{0};
  // How many times a call is retried on a fresh connection after a broken one.
  int connect_retries = 3;
  std::chrono::milliseconds retry_backoff{100};  // doubles after each retry
};

// A postgresql:// URI split into libpq's connection string and kvdex's options.
struct PostgresUri {
  std::string conninfo;  // the URI without kvdex's query parameters
  PostgresOptions options;
};

// Throws Error(kInvalidArgument) for a malformed or unknown kvdex option value
// (use_jsonb must be true/false/1/0, pool a positive integer, ...).
PostgresUri parse_postgres_uri(std::string_view uri);

class PostgresKVStore final : public BaseKVStore {
 public:
  // Connects (conninfo: libpq's "key=value ..." or postgresql:// URI syntax; kvdex's
  // options are not understood here: use parse_postgres_uri or kvdex::open), checks
  // the names, performs the setup. Throws as listed in the file comment.
  explicit PostgresKVStore(const std::string& conninfo, const PostgresOptions& options = {});
  ~PostgresKVStore() override;

  void write(const WriteBatch& batch) override;
  std::optional<EncodedValue> get_encoded(
      std::string_view key, std::string_view collection = kDefaultCollection) override;
  std::vector<EncodedKeyValue> get_all_encoded(
      std::string_view collection = kDefaultCollection) override;
  void scan(std::string_view collection, const ScanVisitor& visit) override;
  bool remove(std::string_view key, std::string_view collection = kDefaultCollection) override;
  std::uint64_t count(std::string_view collection = kDefaultCollection) override;
  std::vector<std::string> collections() override;
  // Waits for pending asynchronous operations and closes every connection; later
  // calls throw Error(kFailedPrecondition). Unlike the other methods, close() must
  // not run while another thread is inside a call on the same store.
  void close() override;

  Future<void> awrite(WriteBatch batch) override;
  Future<void> aput_all_encoded(std::vector<EncodedKeyValue> pairs,
                                std::string collection = std::string(kDefaultCollection),
                                int batch_size = kDefaultBatchSize) override;
  Future<std::optional<EncodedValue>> aget_encoded(
      std::string key, std::string collection = std::string(kDefaultCollection)) override;
  Future<std::vector<EncodedKeyValue>> aget_all_encoded(
      std::string collection = std::string(kDefaultCollection)) override;
  Future<bool> aremove(std::string key,
                       std::string collection = std::string(kDefaultCollection)) override;

  // "schema"."data_table", quoted as sent to the server.
  const std::string& qualified_table() const noexcept { return qualified_table_; }
  // host:port of the server, as error messages name it.
  const std::string& server() const noexcept { return server_; }
  // Whether the table's value column is jsonb (read from the table, not the options).
  bool jsonb() const noexcept { return jsonb_; }

 private:
  void check_open() const;
  template <class T, class Finish>
  Future<T> run_async(std::unique_ptr<detail::AsyncRequest> request, Finish finish);

  std::string qualified_table_;
  std::string server_;
  bool jsonb_ = false;
  std::unique_ptr<detail::PostgresBackend> backend_;
};

}  // namespace kvdex

#endif  // KVDEX_POSTGRES_KVSTORE_H_
