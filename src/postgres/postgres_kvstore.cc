#include "kvdex/postgres_kvstore.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <string>
#include <thread>
#include <utility>

#include "core/json_codec.h"
#include "core/scheme_registry.h"
#include "kvdex/error.h"
#include "kvdex/open.h"
#include "postgres/pg_backend.h"

namespace kvdex {
namespace detail {

// ---- The pool ---------------------------------------------------------------------

ConnectionPool::Lease ConnectionPool::acquire() {
  {
    MutexLock lock(mu_);
    while (idle_.empty() && leased_ >= max_) available_.wait(mu_);
    ++leased_;
    if (!idle_.empty()) {
      std::unique_ptr<PooledConnection> connection = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(connection));
    }
  }
  try {
    auto connection = std::make_unique<PooledConnection>();
    connection->conn = pg_connect(target_);
    return Lease(this, std::move(connection));
  } catch (...) {
    drop();
    throw;
  }
}

void ConnectionPool::put_back(std::unique_ptr<PooledConnection> connection) {
  {
    MutexLock lock(mu_);
    --leased_;
    idle_.push_back(std::move(connection));
  }
  available_.notify_one();
}

void ConnectionPool::drop() {
  {
    MutexLock lock(mu_);
    --leased_;
  }
  available_.notify_one();
}

void ConnectionPool::close_all() {
  std::vector<std::unique_ptr<PooledConnection>> idle;
  {
    MutexLock lock(mu_);
    idle.swap(idle_);
  }
}

AsyncEngine& PostgresBackend::async() {
  MutexLock lock(async_mu_);
  if (!async_) {
    async_ = std::make_unique<AsyncEngine>(target_, target_.options.event_loop_threads,
                                           target_.options.async_connections);
  }
  return *async_;
}

namespace {

// Runs `operation(connection)` on a pooled connection; a broken connection is
// dropped and the operation retried on a fresh one, up to connect_retries times.
template <class Fn>
auto with_connection(PostgresBackend& backend, Fn operation) {
  const PostgresOptions& options = backend.target().options;
  for (int attempt = 0;; ++attempt) {
    try {
      ConnectionPool::Lease lease = backend.pool().acquire();
      auto result = operation(*lease);
      lease.give_back();
      return result;
    } catch (RetryableFailure& failure) {
      if (attempt >= options.connect_retries) throw failure.error;
      std::this_thread::sleep_for(options.retry_backoff * (1 << std::min(attempt, 10)));
    }
  }
}

// Prepares the store's fixed statements on a connection, in one round trip.
void ensure_prepared(PooledConnection& connection, const PgTarget& target) {
  if (connection.prepared) return;
  PGconn* conn = connection.conn.get();
  const std::pair<const char*, std::string> statements[] = {{kGetStatement, sql_get(target)},
                                                            {kRemoveStatement, sql_remove(target)},
                                                            {kScanStatement, sql_scan(target)},
                                                            {kCountStatement, sql_count(target)}};
  if (PQenterPipelineMode(conn) != 1) throw_pg_failure(conn, nullptr, target, "pipeline mode");
  for (const auto& [name, sql] : statements) {
    if (PQsendPrepare(conn, name, sql.c_str(), 0, nullptr) != 1)
      throw_pg_failure(conn, nullptr, target, "preparing statements");
  }
  if (PQpipelineSync(conn) != 1) throw_pg_failure(conn, nullptr, target, "preparing statements");
  for (std::size_t i = 0; i < std::size(statements); ++i) {
    PgResult r(PQgetResult(conn));
    if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK)
      throw_pg_failure(conn, r.get(), target,
                       "preparing statements on table " + target.qualified_table);
    PgResult end(PQgetResult(conn));
  }
  PgResult sync(PQgetResult(conn));
  if (!sync || PQresultStatus(sync.get()) != PGRES_PIPELINE_SYNC)
    throw_pg_failure(conn, sync.get(), target, "preparing statements");
  if (PQexitPipelineMode(conn) != 1) throw_pg_failure(conn, nullptr, target, "pipeline mode");
  connection.prepared = true;
}

// `what()` names the operation for an error message; called only on failure.
template <class What>
PgResult exec_prepared(PooledConnection& connection, const PgTarget& target, const char* name,
                       std::initializer_list<std::string_view> params, ExecStatusType expected,
                       What what) {
  ensure_prepared(connection, target);
  const char* values[4];
  int lengths[4];
  int formats[4];
  int n = 0;
  for (std::string_view p : params) {
    values[n] = p.data();
    lengths[n] = static_cast<int>(p.size());
    formats[n] = 1;
    ++n;
  }
  PgResult r(PQexecPrepared(connection.conn.get(), name, n, values, lengths, formats, 0));
  if (!r || PQresultStatus(r.get()) != expected)
    throw_pg_failure(connection.conn.get(), r.get(), target, what());
  return r;
}

bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// PostgreSQL truncates identifiers beyond NAMEDATALEN - 1 bytes without a word.
void check_identifier(std::string_view identifier, std::string_view what) {
  constexpr std::size_t kMaxIdentifierBytes = 63;
  if (identifier.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "PostgreSQL " + std::string(what) + " is empty");
  }
  if (has_nul(identifier)) {
    throw Error(ErrorCode::kInvalidArgument, "PostgreSQL " + std::string(what) + " '" +
                                                 escape_for_message(identifier) +
                                                 "' holds a NUL byte");
  }
  const std::string problem = describe_invalid_name(identifier, what);
  if (!problem.empty()) throw Error(ErrorCode::kInvalidArgument, "PostgreSQL " + problem);
  if (identifier.size() > kMaxIdentifierBytes) {
    throw Error(ErrorCode::kInvalidArgument,
                "PostgreSQL " + std::string(what) + " '" + escape_for_message(identifier) +
                    "' is " + std::to_string(identifier.size()) +
                    " bytes; PostgreSQL would silently truncate it to 63 (table_name may have at "
                    "most 37 bytes, schema_name 63)");
  }
}

// host:port as libpq will use them, for messages.
std::string server_of(const std::string& conninfo) {
  std::string host;
  std::string port;
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
  if (options == nullptr) {
    std::string message = error ? error : "out of memory";
    PQfreemem(error);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    throw Error(ErrorCode::kInvalidArgument, "invalid PostgreSQL connection string: " + message);
  }
  for (PQconninfoOption* o = options; o->keyword; ++o) {
    if (o->val == nullptr || *o->val == '\0') continue;
    const std::string_view keyword = o->keyword;
    if (keyword == "host" || (keyword == "hostaddr" && host.empty())) host = o->val;
    if (keyword == "port") port = o->val;
  }
  PQconninfoFree(options);
  if (host.empty()) {
    const char* env = std::getenv("PGHOST");
    host = env && *env ? env : "localhost";
  }
  if (port.empty()) {
    const char* env = std::getenv("PGPORT");
    port = env && *env ? env : "5432";
  }
  return host + ":" + port;
}

void setup_table(PooledConnection& connection, PgTarget& target, const std::string& schema,
                 const std::string& table) {
  PGconn* conn = connection.conn.get();
  if (target.options.perform_setup) {
    // As LlamaIndex's perform_setup: the schema, then SQLAlchemy's CREATE TABLE and
    // CREATE INDEX. One transaction under an advisory lock, so openers do not race.
    const std::string quoted_table = quote_identifier(table);
    const std::string sql =
        "BEGIN; SELECT pg_advisory_xact_lock(7170745834318106693); "
        "CREATE SCHEMA IF NOT EXISTS " +
        quote_identifier(schema) + "; CREATE TABLE IF NOT EXISTS " + target.qualified_table +
        " (id SERIAL NOT NULL, key VARCHAR NOT NULL, namespace VARCHAR NOT NULL, value " +
        (target.options.use_jsonb ? "JSONB" : "JSON") + ", PRIMARY KEY (id), CONSTRAINT " +
        quote_identifier(table + ":unique_key_namespace") +
        " UNIQUE (key, namespace)); CREATE INDEX IF NOT EXISTS " +
        quote_identifier(table + ":idx_key_namespace") + " ON " + target.qualified_table +
        " (key, namespace); COMMIT";
    PgResult r(PQexec(conn, sql.c_str()));
    if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
      PgResult rollback(PQexec(conn, "ROLLBACK"));
      throw_pg_failure(conn, r.get(), target, "creating table " + target.qualified_table);
    }
  }
  const std::string qualified = target.qualified_table;
  const char* values[] = {qualified.c_str()};
  PgResult r(PQexecParams(conn,
                          "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                          "WHERE a.attrelid = to_regclass($1) AND a.attname = 'value' "
                          "AND NOT a.attisdropped",
                          1, nullptr, values, nullptr, nullptr, 0));
  if (!r || PQresultStatus(r.get()) != PGRES_TUPLES_OK)
    throw_pg_failure(conn, r.get(), target, "looking up table " + target.qualified_table);
  if (PQntuples(r.get()) != 1) {
    throw Error(ErrorCode::kNotFound, "PostgreSQL server " + target.server + ": table " +
                                          target.qualified_table +
                                          " does not exist (or has no value column) and "
                                          "perform_setup is off");
  }
  const std::string_view type = PQgetvalue(r.get(), 0, 0);
  if (type != "json" && type != "jsonb") {
    throw Error(ErrorCode::kFailedPrecondition,
                "PostgreSQL server " + target.server + ": the value column of table " +
                    target.qualified_table + " is " + std::string(type) +
                    ", not json or jsonb: not a LlamaIndex key-value table");
  }
  target.jsonb = type == "jsonb";
}

// Sends `commands` as one pipeline ending in a sync (one implicit transaction) and
// reads every result; the first failure is thrown after the pipeline is drained.
// Upserts run as statements prepared on the connection (prepared in the same
// pipeline the first time a row count is met; at most kMaxPreparedUpserts counts).
void run_pipeline(PooledConnection& connection, const PgTarget& target,
                  const std::vector<PgCommand>& commands) {
  constexpr std::size_t kMaxPreparedUpserts = 16;
  PGconn* conn = connection.conn.get();
  struct Sent {
    const PgCommand* command;
    std::size_t prepares_rows;  // nonzero: this result is the prepare of that upsert
  };
  std::vector<Sent> sent;
  sent.reserve(commands.size() + 2);
  std::string name;
  if (PQenterPipelineMode(conn) != 1) throw_pg_failure(conn, nullptr, target, "pipeline mode");
  for (const PgCommand& command : commands) {
    const std::size_t rows = command.upsert_rows;
    const auto& prepared = connection.prepared_upserts;
    const bool known =
        rows > 0 && std::find(prepared.begin(), prepared.end(), rows) != prepared.end();
    const bool cacheable = rows > 0 && (known || prepared.size() < kMaxPreparedUpserts);
    int ok = 1;
    if (cacheable) {
      name = "kvdex_upsert_" + std::to_string(rows);
      if (!known) {
        const std::string sql = command.sql.empty() ? sql_upsert(target, rows) : command.sql;
        ok = PQsendPrepare(conn, name.c_str(), sql.c_str(), 0, nullptr);
        sent.push_back(Sent{&command, rows});
      }
      if (ok == 1) {
        ok = PQsendQueryPrepared(conn, name.c_str(), static_cast<int>(command.params.size()),
                                 command.params.data(), command.lengths.data(),
                                 command.formats.data(), 0);
      }
    } else if (rows > 0 && command.sql.empty()) {
      const std::string sql = sql_upsert(target, rows);
      ok = PQsendQueryParams(conn, sql.c_str(), static_cast<int>(command.params.size()), nullptr,
                             command.params.data(), command.lengths.data(), command.formats.data(),
                             0);
    } else {
      ok = command.send(conn);
    }
    if (ok != 1) throw_pg_failure(conn, nullptr, target, command.description);
    sent.push_back(Sent{&command, 0});
  }
  if (PQpipelineSync(conn) != 1) throw_pg_failure(conn, nullptr, target, "pipeline sync");
  PgResult first_failure;
  std::string failed_command;
  for (const Sent& item : sent) {
    PgResult r(PQgetResult(conn));
    if (!r) throw_pg_failure(conn, nullptr, target, item.command->description);
    const ExecStatusType status = PQresultStatus(r.get());
    if (item.prepares_rows > 0 && status == PGRES_COMMAND_OK) {
      connection.prepared_upserts.push_back(item.prepares_rows);
    }
    if (status != PGRES_COMMAND_OK && status != PGRES_PIPELINE_ABORTED && !first_failure) {
      if (pg_connection_broken(conn, r.get()))
        throw_pg_failure(conn, r.get(), target, item.command->description);
      first_failure = std::move(r);
      failed_command = item.command->description;
    }
    PgResult end(PQgetResult(conn));
  }
  PgResult sync(PQgetResult(conn));
  if (!sync || PQresultStatus(sync.get()) != PGRES_PIPELINE_SYNC)
    throw_pg_failure(conn, sync.get(), target, "pipeline sync");
  if (PQexitPipelineMode(conn) != 1) throw_pg_failure(conn, nullptr, target, "pipeline mode");
  if (first_failure) throw_pg_failure(conn, first_failure.get(), target, failed_command);
}

}  // namespace
}  // namespace detail

using detail::ConnectionPool;
using detail::PgResult;
using detail::PooledConnection;

PostgresKVStore::PostgresKVStore(const std::string& conninfo, const PostgresOptions& options) {
  if (options.pool_size < 1 || options.pool_size > 1024) {
    throw Error(ErrorCode::kInvalidArgument,
                "PostgreSQL pool size must be 1 to 1024, not " + std::to_string(options.pool_size));
  }
  if (options.event_loop_threads < 1 || options.event_loop_threads > 64 ||
      options.async_connections < options.event_loop_threads || options.async_connections > 1024) {
    throw Error(ErrorCode::kInvalidArgument,
                "PostgreSQL event_loop_threads must be 1 to 64 and async_connections at least as "
                "many (at most 1024)");
  }
  if (options.connect_retries < 0 || options.statement_timeout.count() < 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "PostgreSQL connect_retries and statement_timeout must not be negative");
  }
  const std::string schema = detail::ascii_lower(options.schema_name);
  const std::string table = "data_" + detail::ascii_lower(options.table_name);
  detail::check_identifier(schema, "schema name");
  detail::check_identifier(table, "table name");
  detail::check_identifier(table + ":unique_key_namespace", "constraint name");
  detail::check_identifier(table + ":idx_key_namespace", "index name");
  if (conninfo.find('\0') != std::string::npos) {
    throw Error(ErrorCode::kInvalidArgument, "PostgreSQL connection string holds a NUL byte");
  }
  detail::PgTarget target;
  target.conninfo = conninfo;
  target.server = detail::server_of(conninfo);
  target.qualified_table = detail::quote_identifier(schema) + "." + detail::quote_identifier(table);
  target.options = options;
  target.options.schema_name = schema;
  target.options.table_name = detail::ascii_lower(options.table_name);
  // Setup runs on a connection of its own, before the pool exists (it must know
  // the column type first); that connection then seeds nothing and is closed.
  for (int attempt = 0;; ++attempt) {
    try {
      PooledConnection connection;
      connection.conn = detail::pg_connect(target);
      detail::setup_table(connection, target, schema, table);
      break;
    } catch (detail::RetryableFailure& failure) {
      if (attempt >= options.connect_retries) throw failure.error;
      std::this_thread::sleep_for(options.retry_backoff * (1 << std::min(attempt, 10)));
    }
  }
  qualified_table_ = target.qualified_table;
  server_ = target.server;
  jsonb_ = target.jsonb;
  backend_ = std::make_unique<detail::PostgresBackend>(std::move(target));
}

PostgresKVStore::~PostgresKVStore() {
  wait_for_pending_operations();
  backend_.reset();
}

void PostgresKVStore::check_open() const {
  if (!backend_) {
    throw Error(ErrorCode::kFailedPrecondition,
                "PostgreSQL store on " + server_ + ", table " + qualified_table_ + " is closed");
  }
}

void PostgresKVStore::close() {
  if (!backend_) return;
  wait_for_pending_operations();
  backend_.reset();
}

void PostgresKVStore::write(const WriteBatch& batch) {
  check_open();
  if (batch.empty()) return;
  const std::vector<detail::PgCommand> commands =
      detail::build_write_commands(batch, backend_->target(), /*copy_params=*/false);
  if (commands.empty()) return;
  detail::with_connection(*backend_, [&](PooledConnection& connection) {
    detail::run_pipeline(connection, backend_->target(), commands);
    return true;
  });
}

std::optional<EncodedValue> PostgresKVStore::get_encoded(std::string_view key,
                                                         std::string_view collection) {
  check_open();
  if (detail::has_nul(key) || detail::has_nul(collection)) return std::nullopt;
  const detail::PgTarget& target = backend_->target();
  return detail::with_connection(
      *backend_, [&](PooledConnection& connection) -> std::optional<EncodedValue> {
        PgResult r = detail::exec_prepared(
            connection, target, detail::kGetStatement, {key, collection}, PGRES_TUPLES_OK,
            [&] { return "get of " + detail::describe_key(key, collection); });
        if (PQntuples(r.get()) == 0) return std::nullopt;
        return detail::pg_read_value(
            std::string_view(PQgetvalue(r.get(), 0, 0),
                             static_cast<std::size_t>(PQgetlength(r.get(), 0, 0))),
            target, key);
      });
}

bool PostgresKVStore::remove(std::string_view key, std::string_view collection) {
  check_open();
  if (detail::has_nul(key) || detail::has_nul(collection)) return false;
  const detail::PgTarget& target = backend_->target();
  return detail::with_connection(*backend_, [&](PooledConnection& connection) {
    PgResult r = detail::exec_prepared(
        connection, target, detail::kRemoveStatement, {key, collection}, PGRES_COMMAND_OK,
        [&] { return "remove of " + detail::describe_key(key, collection); });
    return std::string_view(PQcmdTuples(r.get())) != "0";
  });
}

std::uint64_t PostgresKVStore::count(std::string_view collection) {
  check_open();
  if (detail::has_nul(collection)) return 0;
  const detail::PgTarget& target = backend_->target();
  return detail::with_connection(*backend_, [&](PooledConnection& connection) {
    PgResult r = detail::exec_prepared(
        connection, target, detail::kCountStatement, {collection}, PGRES_TUPLES_OK,
        [&] { return "count of collection '" + detail::escape_for_message(collection) + "'"; });
    const std::string_view text = PQgetvalue(r.get(), 0, 0);
    std::uint64_t n = 0;
    std::from_chars(text.data(), text.data() + text.size(), n);
    return n;
  });
}

std::vector<std::string> PostgresKVStore::collections() {
  check_open();
  const detail::PgTarget& target = backend_->target();
  return detail::with_connection(*backend_, [&](PooledConnection& connection) {
    const std::string sql =
        "SELECT namespace FROM " + target.qualified_table + " GROUP BY namespace ORDER BY min(id)";
    PgResult r(PQexec(connection.conn.get(), sql.c_str()));
    if (!r || PQresultStatus(r.get()) != PGRES_TUPLES_OK)
      detail::throw_pg_failure(connection.conn.get(), r.get(), target, "listing collections");
    std::vector<std::string> names;
    names.reserve(static_cast<std::size_t>(PQntuples(r.get())));
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      names.emplace_back(PQgetvalue(r.get(), i, 0),
                         static_cast<std::size_t>(PQgetlength(r.get(), i, 0)));
    }
    return names;
  });
}

namespace detail {
namespace {

// Streams a collection's rows in single-row mode: one row in memory at a time.
// `visit(key, value_text)` gets the raw text of the value column. Returns the number
// of rows visited. A connection that breaks after the first row is not retried (the
// caller would see rows twice): kUnavailable.
template <class Restart, class Visit>
std::size_t stream_collection(PostgresBackend& backend, std::string_view collection,
                              bool retry_allowed, Restart restart, Visit visit) {
  const PgTarget& target = backend.target();
  std::size_t visited = 0;
  return with_connection(backend, [&](PooledConnection& connection) {
    if (visited > 0 && !retry_allowed) {
      throw Error(ErrorCode::kUnavailable, "PostgreSQL server " + target.server +
                                               ": connection lost during a scan of '" +
                                               escape_for_message(collection) + "' after " +
                                               std::to_string(visited) + " rows");
    }
    visited = 0;
    restart();
    ensure_prepared(connection, target);
    PGconn* conn = connection.conn.get();
    const char* values[] = {collection.data()};
    const int lengths[] = {static_cast<int>(collection.size())};
    const int formats[] = {1};
    const std::string what = "scan of collection '" + escape_for_message(collection) + "'";
    if (PQsendQueryPrepared(conn, kScanStatement, 1, values, lengths, formats, 0) != 1)
      throw_pg_failure(conn, nullptr, target, what);
    if (PQsetSingleRowMode(conn) != 1) throw_pg_failure(conn, nullptr, target, what);
    PgResult failure;
    while (PgResult r{PQgetResult(conn)}) {
      const ExecStatusType status = PQresultStatus(r.get());
      if (status == PGRES_SINGLE_TUPLE) {
        visit(std::string_view(PQgetvalue(r.get(), 0, 0),
                               static_cast<std::size_t>(PQgetlength(r.get(), 0, 0))),
              std::string_view(PQgetvalue(r.get(), 0, 1),
                               static_cast<std::size_t>(PQgetlength(r.get(), 0, 1))));
        ++visited;
      } else if (status != PGRES_TUPLES_OK && !failure) {
        failure = std::move(r);
      }
    }
    if (failure) throw_pg_failure(conn, failure.get(), target, what);
    return visited;
  });
}

}  // namespace
}  // namespace detail

void PostgresKVStore::scan(std::string_view collection, const ScanVisitor& visit) {
  check_open();
  if (detail::has_nul(collection)) return;
  const detail::PgTarget& target = backend_->target();
  detail::stream_collection(
      *backend_, collection, /*retry_allowed=*/false, [] {},
      [&](std::string_view key, std::string_view text) {
        if (!target.jsonb && detail::is_dumps_object(text)) {
          visit(key, text);
        } else {
          const EncodedValue value = detail::pg_read_value(text, target, key);
          visit(key, value.text());
        }
      });
}

std::vector<EncodedKeyValue> PostgresKVStore::get_all_encoded(std::string_view collection) {
  check_open();
  std::vector<EncodedKeyValue> out;
  if (detail::has_nul(collection)) return out;
  const detail::PgTarget& target = backend_->target();
  detail::stream_collection(
      *backend_, collection, /*retry_allowed=*/true, [&] { out.clear(); },
      [&](std::string_view key, std::string_view text) {
        out.emplace_back(std::string(key), detail::pg_read_value(text, target, key));
      });
  return out;
}

// ---- Asynchronous operations (event loops, pipeline mode) ----------------------------

namespace {

detail::PgCommand prepared_command(const char* name, std::initializer_list<std::string_view> params,
                                   std::string description) {
  detail::PgCommand command;
  command.prepared = name;
  command.owned.assign(params.begin(), params.end());
  for (const std::string& bytes : command.owned) command.add_param(bytes);
  command.description = std::move(description);
  return command;
}

}  // namespace

// Runs `request` on the event loops; `finish(results)` turns the results into the
// future's value on the loop's thread. The operation stops counting as pending
// before the future completes.
template <class T, class Finish>
Future<T> PostgresKVStore::run_async(std::unique_ptr<detail::AsyncRequest> request, Finish finish) {
  auto promise = std::make_shared<Promise<T>>();
  Future<T> future = promise->future();
  auto token = std::make_shared<PendingOperation>(begin_pending_operation());
  request->done = [promise, token, finish = std::move(finish)](std::vector<PgResult>& results,
                                                               std::exception_ptr error) mutable {
    std::optional<std::conditional_t<std::is_void_v<T>, bool, T>> value;
    if (!error) {
      try {
        if constexpr (std::is_void_v<T>) {
          finish(results);
          value.emplace(true);
        } else {
          value.emplace(finish(results));
        }
      } catch (...) {
        error = std::current_exception();
      }
    }
    token->release();
    if (error) {
      promise->set_error(std::move(error));
    } else if constexpr (std::is_void_v<T>) {
      promise->set_value();
    } else {
      promise->set_value(std::move(*value));
    }
  };
  backend_->async().submit(std::move(request));
  return future;
}

Future<std::optional<EncodedValue>> PostgresKVStore::aget_encoded(std::string key,
                                                                  std::string collection) {
  check_open();
  if (detail::has_nul(key) || detail::has_nul(collection))
    return make_ready_future(std::optional<EncodedValue>());
  auto request = std::make_unique<detail::AsyncRequest>();
  request->retry_safe = true;
  request->groupable = true;
  request->commands.push_back(prepared_command(detail::kGetStatement, {key, collection},
                                               "get of " + detail::describe_key(key, collection)));
  const detail::PgTarget* target = &backend_->target();
  return run_async<std::optional<EncodedValue>>(
      std::move(request),
      [target,
       key = std::move(key)](std::vector<PgResult>& results) -> std::optional<EncodedValue> {
        const PGresult* r = results[0].get();
        if (PQntuples(r) == 0) return std::nullopt;
        return detail::pg_read_value(
            std::string_view(PQgetvalue(r, 0, 0), static_cast<std::size_t>(PQgetlength(r, 0, 0))),
            *target, key);
      });
}

Future<bool> PostgresKVStore::aremove(std::string key, std::string collection) {
  check_open();
  if (detail::has_nul(key) || detail::has_nul(collection)) return make_ready_future(false);
  auto request = std::make_unique<detail::AsyncRequest>();
  request->retry_safe = true;
  request->commands.push_back(
      prepared_command(detail::kRemoveStatement, {key, collection},
                       "remove of " + detail::describe_key(key, collection)));
  return run_async<bool>(std::move(request), [](std::vector<PgResult>& results) {
    return std::string_view(PQcmdTuples(results[0].get())) != "0";
  });
}

Future<std::vector<EncodedKeyValue>> PostgresKVStore::aget_all_encoded(std::string collection) {
  check_open();
  if (detail::has_nul(collection)) return make_ready_future(std::vector<EncodedKeyValue>());
  auto request = std::make_unique<detail::AsyncRequest>();
  request->retry_safe = true;
  request->commands.push_back(
      prepared_command(detail::kScanStatement, {collection},
                       "get_all of collection '" + detail::escape_for_message(collection) + "'"));
  const detail::PgTarget* target = &backend_->target();
  return run_async<std::vector<EncodedKeyValue>>(
      std::move(request), [target](std::vector<PgResult>& results) {
        const PGresult* r = results[0].get();
        std::vector<EncodedKeyValue> out;
        out.reserve(static_cast<std::size_t>(PQntuples(r)));
        for (int i = 0; i < PQntuples(r); ++i) {
          std::string key(PQgetvalue(r, i, 0), static_cast<std::size_t>(PQgetlength(r, i, 0)));
          EncodedValue value = detail::pg_read_value(
              std::string_view(PQgetvalue(r, i, 1), static_cast<std::size_t>(PQgetlength(r, i, 1))),
              *target, key);
          out.emplace_back(std::move(key), std::move(value));
        }
        return out;
      });
}

Future<void> PostgresKVStore::awrite(WriteBatch batch) {
  check_open();
  auto request = std::make_unique<detail::AsyncRequest>();
  request->retry_safe = true;
  request->commands = detail::build_write_commands(batch, backend_->target(), /*copy_params=*/true);
  if (request->commands.empty()) return make_ready_future();
  return run_async<void>(std::move(request), [](std::vector<PgResult>&) {});
}

Future<void> PostgresKVStore::aput_all_encoded(std::vector<EncodedKeyValue> pairs,
                                               std::string collection, int batch_size) {
  check_open();
  check_batch_size(batch_size);
  // Every batch is built (and so every value checked) at the call; the batches are
  // then sent one after another, each after the previous one committed.
  auto pending = std::make_shared<std::deque<std::vector<detail::PgCommand>>>();
  for (const WriteBatch& batch : make_batches(pairs, collection, batch_size)) {
    pending->push_back(detail::build_write_commands(batch, backend_->target(), true));
  }
  if (pending->empty()) return make_ready_future();
  auto promise = std::make_shared<Promise<void>>();
  Future<void> future = promise->future();
  auto token = std::make_shared<PendingOperation>(begin_pending_operation());
  detail::AsyncEngine* engine = &backend_->async();
  // Each completion sends the next batch; the last (or a failure) completes the future.
  auto send_next = std::make_shared<std::function<void()>>();
  *send_next = [pending, promise, token, engine, weak = std::weak_ptr(send_next)]() {
    auto request = std::make_unique<detail::AsyncRequest>();
    request->retry_safe = true;
    request->commands = std::move(pending->front());
    pending->pop_front();
    request->done = [pending, promise, token, next = weak.lock()](std::vector<PgResult>&,
                                                                  std::exception_ptr error) {
      if (error || pending->empty()) {
        token->release();
        if (error) {
          promise->set_error(std::move(error));
        } else {
          promise->set_value();
        }
        return;
      }
      (*next)();
    };
    engine->submit(std::move(request));
  };
  (*send_next)();
  return future;
}

// ---- URIs ---------------------------------------------------------------------------

namespace {

std::string percent_decode(std::string_view text, std::string_view uri) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      int value = 0;
      auto [ptr, ec] = std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
      if (ec != std::errc() || ptr != text.data() + i + 3) {
        throw Error(ErrorCode::kInvalidArgument,
                    "malformed percent escape in PostgreSQL URI '" + std::string(uri) + "'");
      }
      out += static_cast<char>(value);
      i += 2;
    } else if (text[i] == '%') {
      throw Error(ErrorCode::kInvalidArgument,
                  "malformed percent escape in PostgreSQL URI '" + std::string(uri) + "'");
    } else {
      out += text[i];
    }
  }
  return out;
}

bool parse_bool(std::string_view name, std::string_view value) {
  if (value == "true" || value == "1" || value == "yes" || value == "on") return true;
  if (value == "false" || value == "0" || value == "no" || value == "off") return false;
  throw Error(ErrorCode::kInvalidArgument, "PostgreSQL URI option " + std::string(name) + "='" +
                                               std::string(value) + "' is not true or false");
}

long long parse_count(std::string_view name, std::string_view value) {
  long long n = 0;
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc() || ptr != value.data() + value.size() || n < 0) {
    throw Error(ErrorCode::kInvalidArgument, "PostgreSQL URI option " + std::string(name) + "='" +
                                                 std::string(value) +
                                                 "' is not a non-negative integer");
  }
  return n;
}

}  // namespace

PostgresUri parse_postgres_uri(std::string_view uri) {
  PostgresUri out;
  const std::size_t question = uri.find('?');
  std::string kept(uri.substr(0, question));
  if (question == std::string_view::npos) {
    out.conninfo = kept;
    return out;
  }
  std::string kept_query;
  std::string_view query = uri.substr(question + 1);
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const std::size_t eq = pair.find('=');
    const std::string name = percent_decode(pair.substr(0, eq), uri);
    const std::string value =
        eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1), uri);
    PostgresOptions& o = out.options;
    if (name == "table_name") {
      o.table_name = value;
    } else if (name == "schema_name") {
      o.schema_name = value;
    } else if (name == "use_jsonb") {
      o.use_jsonb = parse_bool(name, value);
    } else if (name == "perform_setup") {
      o.perform_setup = parse_bool(name, value);
    } else if (name == "pool" || name == "pool_size") {
      o.pool_size = static_cast<std::size_t>(parse_count(name, value));
    } else if (name == "event_loop_threads") {
      o.event_loop_threads = static_cast<std::size_t>(parse_count(name, value));
    } else if (name == "async_connections") {
      o.async_connections = static_cast<std::size_t>(parse_count(name, value));
    } else if (name == "statement_timeout") {
      o.statement_timeout = std::chrono::milliseconds(parse_count(name, value));
    } else if (name == "connect_retries") {
      o.connect_retries = static_cast<int>(std::min<long long>(parse_count(name, value), 1000));
    } else {
      if (!kept_query.empty()) kept_query += '&';
      kept_query += pair;  // libpq's own parameter (connect_timeout, sslmode, ...)
    }
  }
  out.conninfo = kept_query.empty() ? kept : kept + "?" + kept_query;
  return out;
}

namespace detail {

void register_postgres_scheme() {
  auto factory = [](const StoreUri& uri,
                    const OpenOptions& open_options) -> std::unique_ptr<BaseKVStore> {
    PostgresUri parsed = parse_postgres_uri(uri.text);
    // Opening for reading only must not create tables: a missing one is kNotFound.
    if (!open_options.create_if_missing || open_options.read_only)
      parsed.options.perform_setup = false;
    return std::make_unique<PostgresKVStore>(parsed.conninfo, parsed.options);
  };
  register_builtin_scheme("postgresql", factory);
  register_builtin_scheme("postgres", factory);
}

}  // namespace detail
}  // namespace kvdex
