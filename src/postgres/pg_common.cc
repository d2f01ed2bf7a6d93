#include "postgres/pg_common.h"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <utility>

#include "core/json_codec.h"
#include "kvdex/json.h"

namespace kvdex::detail {
namespace {

void ignore_notice(void*, const char*) {}  // library code never prints

std::string trimmed(const char* message) {
  std::string text = message ? message : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// Does canonical value text hold NaN, Infinity (outside strings) or, for jsonb,
// the escape \u0000 inside one? PostgreSQL refuses both.
std::string_view unstorable_in(std::string_view text, bool jsonb) {
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        if (jsonb && text.substr(i, 6) == "\\u0000") return "the escape \\u0000 (jsonb refuses it)";
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == 'N' || c == 'I') {
      return "NaN or Infinity (PostgreSQL's JSON types refuse them)";
    }
  }
  return {};
}

void check_storable_name(std::string_view name, std::string_view what, std::string_view key,
                         std::string_view collection) {
  if (name.find('\0') != std::string_view::npos) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string("PostgreSQL cannot store a ") + std::string(what) +
                    " holding a NUL byte: " + describe_key(key, collection));
  }
}

}  // namespace

std::string describe_key(std::string_view key, std::string_view collection) {
  return "key '" + escape_for_message(key) + "' in collection '" + escape_for_message(collection) +
         "'";
}

std::string quote_identifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string sql_get(const PgTarget& t) {
  return "SELECT value FROM " + t.qualified_table + " WHERE key = $1 AND namespace = $2";
}
std::string sql_remove(const PgTarget& t) {
  return "DELETE FROM " + t.qualified_table + " WHERE key = $1 AND namespace = $2";
}
std::string sql_scan(const PgTarget& t) {
  return "SELECT key, value FROM " + t.qualified_table + " WHERE namespace = $1 ORDER BY id";
}
std::string sql_count(const PgTarget& t) {
  return "SELECT count(*) FROM " + t.qualified_table + " WHERE namespace = $1";
}
std::string sql_upsert(const PgTarget& t, std::size_t rows) {
  std::string sql = "INSERT INTO " + t.qualified_table + " (key, namespace, value) VALUES ";
  sql.reserve(sql.size() + rows * 20 + 80);
  for (std::size_t r = 0; r < rows; ++r) {
    if (r > 0) sql += ", ";
    sql += "($" + std::to_string(2 * r + 2) + ", $1, $" + std::to_string(2 * r + 3) + ")";
  }
  return sql + " ON CONFLICT (key, namespace) DO UPDATE SET value = EXCLUDED.value";
}

PgConn pg_connect(const PgTarget& target) {
  // dbname is expanded as the caller's connection string; the parameters after it
  // override, those before it are defaults the string may override.
  const char* keywords[] = {"connect_timeout", "fallback_application_name", "dbname",
                            "client_encoding", nullptr};
  const char* values[] = {"10", "kvdex", target.conninfo.c_str(), "UTF8", nullptr};
  PgConn conn(PQconnectdbParams(keywords, values, /*expand_dbname=*/1));
  if (!conn) throw Error(ErrorCode::kResourceExhausted, "libpq: out of memory connecting");
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    const std::string message = trimmed(PQerrorMessage(conn.get()));
    const std::string text = "PostgreSQL server " + target.server + ": cannot connect: " + message;
    if (contains(message, "authentication failed") || contains(message, "no pg_hba.conf entry") ||
        (contains(message, "role \"") && contains(message, "does not exist"))) {
      throw Error(ErrorCode::kPermissionDenied, text);
    }
    if (contains(message, "database \"") && contains(message, "does not exist")) {
      throw Error(ErrorCode::kNotFound, text);
    }
    throw RetryableFailure{Error(ErrorCode::kUnavailable, text)};
  }
  PQsetNoticeProcessor(conn.get(), ignore_notice, nullptr);
  if (PQserverVersion(conn.get()) < 140000) {
    throw Error(ErrorCode::kNotSupported, "PostgreSQL server " + target.server + " is version " +
                                              std::to_string(PQserverVersion(conn.get())) +
                                              "; kvdex needs 14 or later (pipeline mode)");
  }
  if (target.options.statement_timeout.count() > 0) {
    const std::string sql =
        "SET statement_timeout = " + std::to_string(target.options.statement_timeout.count());
    PgResult r(PQexec(conn.get(), sql.c_str()));
    if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK)
      throw_pg_failure(conn.get(), r.get(), target, "setting statement_timeout");
  }
  return conn;
}

bool pg_connection_broken(PGconn* conn, const PGresult* result) {
  if (conn == nullptr || PQstatus(conn) == CONNECTION_BAD) return true;
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  if (state == nullptr) return result == nullptr;
  const std::string_view s(state);
  return s.starts_with("08") || s == "57P01" || s == "57P02" || s == "57P03";
}

void throw_pg_failure(PGconn* conn, const PGresult* result, const PgTarget& target,
                      std::string_view what) {
  std::string message = trimmed(result ? PQresultErrorMessage(result) : nullptr);
  if (message.empty() && conn) message = trimmed(PQerrorMessage(conn));
  const std::string text =
      "PostgreSQL server " + target.server + ", " + std::string(what) + ": " + message;
  if (pg_connection_broken(conn, result)) {
    throw RetryableFailure{Error(ErrorCode::kUnavailable, text)};
  }
  const char* state_text = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const std::string_view state = state_text ? state_text : "";
  // A deadlock or serialization failure rolled the transaction back: retrying is safe.
  if (state == "40001" || state == "40P01") {
    throw RetryableFailure{Error(ErrorCode::kUnavailable, text)};
  }
  ErrorCode code = ErrorCode::kFailedPrecondition;
  if (state == "57014") {
    code = ErrorCode::kDeadlineExceeded;
  } else if (state.starts_with("22")) {
    code = ErrorCode::kInvalidArgument;
  } else if (state == "42P01" || state == "3F000") {
    code = ErrorCode::kNotFound;
  } else if (state.starts_with("28") || state == "42501") {
    code = ErrorCode::kPermissionDenied;
  } else if (state.starts_with("53")) {
    code = ErrorCode::kResourceExhausted;
  } else if (state.starts_with("42")) {
    code = ErrorCode::kInternal;  // kvdex sent a statement the server cannot parse
  }
  throw Error(code, text);
}

int PgCommand::send(PGconn* conn) const {
  const int n = static_cast<int>(params.size());
  if (is_prepare) return PQsendPrepare(conn, prepared.c_str(), sql.c_str(), 0, nullptr);
  if (!prepared.empty()) {
    return PQsendQueryPrepared(conn, prepared.c_str(), n, params.data(), lengths.data(),
                               formats.data(), 0);
  }
  return PQsendQueryParams(conn, sql.c_str(), n, nullptr, params.data(), lengths.data(),
                           formats.data(), 0);
}

std::vector<PgCommand> build_write_commands(const WriteBatch& batch, const PgTarget& target,
                                            bool copy_params) {
  // PostgreSQL takes at most 65,535 parameters a statement: 2 per row plus the namespace.
  constexpr std::size_t kMaxRowsPerStatement = 32767;
  struct Row {
    std::string_view key;
    const EncodedValue* value;
  };
  std::vector<PgCommand> commands;
  std::vector<Row> rows;
  std::unordered_map<std::string_view, std::size_t> row_of_key;
  std::string_view group_collection;
  bool in_group = false;

  // Points the command's parameters at `views`, or at copies of them it owns.
  auto set_params = [&](PgCommand& command, const std::vector<std::string_view>& views) {
    if (copy_params) {
      std::vector<std::string> copies(views.begin(), views.end());
      command.owned = std::move(copies);
      for (const std::string& bytes : command.owned) command.add_param(bytes);
    } else {
      for (std::string_view bytes : views) command.add_param(bytes);
    }
  };
  std::vector<std::string_view> views;
  auto flush_group = [&] {
    if (!in_group) return;
    for (std::size_t start = 0; start < rows.size(); start += kMaxRowsPerStatement) {
      const std::size_t end = std::min(rows.size(), start + kMaxRowsPerStatement);
      PgCommand& command = commands.emplace_back();
      // The synchronous path runs upserts as statements prepared per row count and
      // builds the text only when it prepares one.
      if (copy_params) command.sql = sql_upsert(target, end - start);
      command.upsert_rows = end - start;
      command.description = "put of " + std::to_string(end - start) + " keys in collection '" +
                            escape_for_message(group_collection) + "'";
      const std::size_t nparams = 1 + 2 * (end - start);
      command.params.reserve(nparams);
      command.lengths.reserve(nparams);
      command.formats.reserve(nparams);
      // jsonb's binary input is a version byte, then the text: those copies live in
      // `owned`, reserved up front so that the views into it stay valid.
      if (target.jsonb) command.owned.reserve(end - start);
      views.clear();
      views.push_back(group_collection);
      for (std::size_t r = start; r < end; ++r) {
        views.push_back(rows[r].key);
        if (target.jsonb) {
          std::string& prefixed = command.owned.emplace_back();
          prefixed.reserve(rows[r].value->size() + 1);
          prefixed += '\x01';
          prefixed += rows[r].value->text();
          views.push_back(prefixed);
        } else {
          views.push_back(rows[r].value->text());
        }
      }
      set_params(command, views);
    }
    rows.clear();
    row_of_key.clear();
    in_group = false;
  };

  for (const WriteBatch::Op& op : batch.ops()) {
    const std::string& collection = batch.collection_of(op);
    if (op.value) {
      check_storable_name(op.key, "key", op.key, collection);
      check_storable_name(collection, "collection name", op.key, collection);
      const std::string_view problem = unstorable_in(op.value->text(), target.jsonb);
      if (!problem.empty()) {
        throw Error(ErrorCode::kInvalidArgument, "PostgreSQL cannot store the value of " +
                                                     describe_key(op.key, collection) +
                                                     ": it holds " + std::string(problem));
      }
      if (in_group && group_collection != collection) flush_group();
      if (!in_group) {
        in_group = true;
        group_collection = collection;
      }
      auto [it, inserted] = row_of_key.try_emplace(op.key, rows.size());
      if (inserted) {
        rows.push_back(Row{op.key, &*op.value});
      } else {
        rows[it->second].value = &*op.value;  // last value wins, first place kept
      }
    } else {
      flush_group();
      // A name holding NUL cannot be in the table: nothing to delete.
      if (op.key.find('\0') != std::string::npos || collection.find('\0') != std::string::npos)
        continue;
      PgCommand& command = commands.emplace_back();
      command.sql = sql_remove(target);
      command.description = "remove of " + describe_key(op.key, collection);
      set_params(command, {op.key, collection});
    }
  }
  flush_group();
  return commands;
}

EncodedValue pg_read_value(std::string_view text, const PgTarget& target, std::string_view key) {
  try {
    return EncodedValue::parse(text);
  } catch (const Error& e) {
    throw Error(ErrorCode::kCorruption, "PostgreSQL server " + target.server + ", table " +
                                            target.qualified_table + ": the value of key '" +
                                            escape_for_message(key) +
                                            "' is not JSON object text: " + e.what());
  }
}

}  // namespace kvdex::detail
