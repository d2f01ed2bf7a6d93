// PostgresKVStore's own tests: LlamaIndex's table layout, hostile names, URIs,
// asynchronous pipelining, and faults (server stopped mid-write, backends killed).
#include "kvdex/postgres_kvstore.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "kvdex/kvdex.h"
#include "postgres/postgres_server.h"
#include "test_util.h"

namespace kvdex::testing {
namespace {

std::string unique_name(const std::string& base) {
  static std::atomic<int> next{0};
  return base + "_" + std::to_string(getpid()) + "_" + std::to_string(next++);
}

// SQL string literal (for psql checks only; the store itself binds parameters).
std::string literal(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::string sql_identifier(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::vector<EncodedKeyValue> make_pairs(const std::string& prefix, int n) {
  std::vector<EncodedKeyValue> pairs;
  for (int i = 0; i < n; ++i) {
    pairs.emplace_back(prefix + std::to_string(i),
                       EncodedValue::encode({{"i", i}, {"text", std::string(200, 'x')}}));
  }
  return pairs;
}

TEST(PostgresKVStore, CreatesLlamaIndexsTableExactly) {
  PostgresServer& server = postgres_server();
  const std::string table = unique_name("MyDocs");
  PostgresKVStore store(server.conninfo(), {.table_name = table});
  const std::string lower = "data_" + [&] {
    std::string s = table;
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }();
  EXPECT_EQ(store.qualified_table(), "\"public\".\"" + lower + "\"");
  EXPECT_FALSE(store.jsonb());
  EXPECT_EQ(server.psql("SELECT column_name || ' ' || data_type || ' ' || is_nullable FROM "
                        "information_schema.columns WHERE table_name = " +
                        literal(lower) + " ORDER BY ordinal_position"),
            "id integer NO\nkey character varying NO\nnamespace character varying NO\n"
            "value json YES");
  EXPECT_EQ(
      server.psql("SELECT conname || ' ' || contype::text FROM pg_constraint WHERE conrelid = " +
                  literal("public." + lower) + "::regclass ORDER BY conname"),
      lower + ":unique_key_namespace u\n" + lower + "_pkey p");
  EXPECT_EQ(server.psql("SELECT indexdef FROM pg_indexes WHERE indexname = " +
                        literal(lower + ":idx_key_namespace")),
            "CREATE INDEX \"" + lower + ":idx_key_namespace\" ON public." + lower +
                " USING btree (key, namespace)");
  EXPECT_EQ(server.psql("SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = " +
                        literal("public." + lower) + "::regclass"),
            "nextval('" + lower + "_id_seq'::regclass)");
  // A second store on the same table uses it as it is.
  store.put("k", {{"v", 1}}, "docstore/data");
  PostgresKVStore again(server.conninfo(), {.table_name = table});
  EXPECT_EQ(again.get("k", "docstore/data"), (Value{{"v", 1}}));
}

TEST(PostgresKVStore, ReadsATableLlamaIndexCreatedInIdOrder) {
  PostgresServer& server = postgres_server();
  const std::string name = unique_name("li");
  const std::string table = "data_" + name;
  // SQLAlchemy's DDL for LlamaIndex's model, and rows as psycopg2 sends json.dumps text.
  server.psql("CREATE TABLE public." + table +
              " (id SERIAL NOT NULL, key VARCHAR NOT NULL, namespace VARCHAR NOT NULL, value "
              "JSON, PRIMARY KEY (id), CONSTRAINT \"" +
              table + ":unique_key_namespace\" UNIQUE (key, namespace)); CREATE INDEX \"" + table +
              ":idx_key_namespace\" ON public." + table + " (key, namespace); INSERT INTO public." +
              table +
              " (key, namespace, value) VALUES ('b', 'docstore/data', '{\"z\": 1, \"a\": [1.5, "
              "\"\\u00e9\"]}'), ('a', 'docstore/data', '{\"n\": null}'), ('x', 'other', '{}')");
  PostgresKVStore store(server.conninfo(), {.table_name = name, .perform_setup = false});
  std::vector<EncodedKeyValue> all = store.get_all_encoded("docstore/data");
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].first, "b");
  EXPECT_EQ(all[0].second.text(), R"({"z": 1, "a": [1.5, "\u00e9"]})");
  EXPECT_EQ(all[1].first, "a");
  EXPECT_EQ(store.collections(), (std::vector<std::string>{"docstore/data", "other"}));
  EXPECT_EQ(store.count("docstore/data"), 2u);
  store.put("c", {{"new", true}}, "docstore/data");
  EXPECT_EQ(server.psql("SELECT value FROM public." + table + " WHERE key = 'c'"),
            R"({"new": true})");
}

TEST(PostgresKVStore, JsonbTableGivesValuesBackInPythonsEncoding) {
  PostgresServer& server = postgres_server();
  PostgresKVStore store(server.conninfo(), {.table_name = unique_name("jsonb"), .use_jsonb = true});
  EXPECT_TRUE(store.jsonb());
  store.put_encoded("k", EncodedValue::parse(R"({"zz": 1e-05, "a": "\u00e9", "a": 2, "n": 1.0})"));
  // PostgreSQL's own text: keys by length then bytes, the duplicate dropped, é raw.
  EXPECT_EQ(server.psql("SELECT value::text FROM " + store.qualified_table()),
            "{\"a\": 2, \"n\": 1.0, \"zz\": 0.00001}");
  EXPECT_EQ(store.get_encoded("k")->text(), R"({"a": 2, "n": 1.0, "zz": 1e-05})");
  KVDEX_EXPECT_ERROR(store.put_encoded("z", EncodedValue::parse(R"({"s": "\u0000"})")),
                     ErrorCode::kInvalidArgument);
}

TEST(PostgresKVStore, HostileNamesAreDataOrAClearError) {
  PostgresServer& server = postgres_server();
  server.psql("CREATE TABLE IF NOT EXISTS x (v int)");
  const std::vector<std::string> hostile = {
      "'; DROP TABLE x; --", "\"; DROP TABLE x; --", "a\"b'c\\d",
      "$1 $$ %s ?",          "Ünïcödé 日本語 😀",     "x\" ; SELECT pg_sleep(10) ; --"};
  // As collection names and keys.
  PostgresKVStore store(server.conninfo(), {.table_name = unique_name("hostile")});
  for (const std::string& name : hostile) {
    store.put(name, {{"name", name}}, name);
    EXPECT_EQ(store.get(name, name), (Value{{"name", name}}));
    EXPECT_EQ(store.get_all(name).size(), 1u);
    EXPECT_EQ(store.count(name), 1u);
  }
  std::vector<std::string> collections = store.collections();
  EXPECT_EQ(collections, hostile);
  for (const std::string& name : hostile) EXPECT_TRUE(store.remove(name, name));
  // As table and schema names: tables of exactly that (lower-cased) name.
  for (const std::string& name : hostile) {
    const std::string& table_name = name;
    PostgresKVStore named(server.conninfo(),
                          {.table_name = table_name, .schema_name = "s " + name});
    named.put("k", {{"v", 1}}, name);
    EXPECT_EQ(named.get("k", name), (Value{{"v", 1}}));
    std::string lower = "data_" + table_name;
    for (char& c : lower) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    std::string schema = "s " + name;
    for (char& c : schema) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    EXPECT_EQ(
        server.psql("SELECT count(*) FROM " + sql_identifier(schema) + "." + sql_identifier(lower)),
        "1")
        << name;
  }
  EXPECT_EQ(server.psql("SELECT count(*) FROM x"), "0") << "table x survived";
  // Identifiers PostgreSQL would truncate are refused, naming what is too long.
  try {
    PostgresKVStore too_long(server.conninfo(), {.table_name = std::string(38, 't')});
    ADD_FAILURE() << "a 38-byte table_name makes a 64-byte constraint name";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("63"), std::string::npos) << e.what();
  }
  PostgresKVStore longest(server.conninfo(), {.table_name = std::string(37, 't')});
  KVDEX_EXPECT_ERROR(PostgresKVStore(server.conninfo(), {.schema_name = std::string(64, 's')}),
                     ErrorCode::kInvalidArgument);
  KVDEX_EXPECT_ERROR(PostgresKVStore(server.conninfo(), {.table_name = "é" + std::string(36, 't')}),
                     ErrorCode::kInvalidArgument);
  KVDEX_EXPECT_ERROR(PostgresKVStore(server.conninfo(), {.table_name = std::string("a\0b", 3)}),
                     ErrorCode::kInvalidArgument);
  KVDEX_EXPECT_ERROR(PostgresKVStore(server.conninfo(), {.table_name = "bad\xff"}),
                     ErrorCode::kInvalidArgument);
  KVDEX_EXPECT_ERROR(PostgresKVStore(server.conninfo(), {.schema_name = ""}),
                     ErrorCode::kInvalidArgument);
}

TEST(PostgresKVStore, UrisCarryKvdexOptionsAndLibpqsOwn) {
  PostgresUri parsed = parse_postgres_uri(
      "postgresql://u:p%40ss@h:5/db?table_name=My%20T&connect_timeout=3&use_jsonb=true&pool=3"
      "&schema_name=s&statement_timeout=250&sslmode=disable");
  EXPECT_EQ(parsed.conninfo, "postgresql://u:p%40ss@h:5/db?connect_timeout=3&sslmode=disable");
  EXPECT_EQ(parsed.options.table_name, "My T");
  EXPECT_EQ(parsed.options.schema_name, "s");
  EXPECT_TRUE(parsed.options.use_jsonb);
  EXPECT_EQ(parsed.options.pool_size, 3u);
  EXPECT_EQ(parsed.options.statement_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(parse_postgres_uri("postgres://h/db").conninfo, "postgres://h/db");
  KVDEX_EXPECT_ERROR(parse_postgres_uri("postgresql://h/db?use_jsonb=maybe"),
                     ErrorCode::kInvalidArgument);
  KVDEX_EXPECT_ERROR(parse_postgres_uri("postgresql://h/db?pool=-1"), ErrorCode::kInvalidArgument);

  PostgresServer& server = postgres_server();
  const std::string table = unique_name("uri");
  for (const std::string scheme : {"postgresql", "postgres"}) {
    std::unique_ptr<BaseKVStore> store =
        kvdex::open(scheme + "://postgres@127.0.0.1:" + std::to_string(server.port()) +
                    "/postgres?table_name=" + table + "&use_jsonb=true&pool=2");
    store->put(scheme, {{"v", scheme}});
    auto* pg = dynamic_cast<PostgresKVStore*>(store.get());
    ASSERT_NE(pg, nullptr);
    EXPECT_TRUE(pg->jsonb());
  }
  std::unique_ptr<BaseKVStore> reader =
      kvdex::open(server.uri() + "?table_name=" + table, {.create_if_missing = false});
  EXPECT_EQ(reader->count(), 2u);
  KVDEX_EXPECT_ERROR(kvdex::open(server.uri() + "?table_name=" + unique_name("missing"),
                                 {.create_if_missing = false}),
                     ErrorCode::kNotFound);
}

TEST(PostgresKVStore, UnreachableServerIsUnavailableNamingHostAndPort) {
  // A port nothing listens on: bind one, note it, close it.
  PostgresServer& server = postgres_server();
  const std::string conninfo = "host=127.0.0.1 port=1 dbname=postgres user=postgres";
  try {
    PostgresKVStore store(conninfo,
                          {.connect_retries = 1, .retry_backoff = std::chrono::milliseconds(1)});
    ADD_FAILURE() << "connected to port 1";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:1"), std::string::npos) << e.what();
  }
  KVDEX_EXPECT_ERROR(PostgresKVStore(server.conninfo() + " user=nobody_here"),
                     ErrorCode::kPermissionDenied);
  KVDEX_EXPECT_ERROR(PostgresKVStore(server.conninfo("no_such_db")), ErrorCode::kNotFound);
}

TEST(PostgresKVStore, ConcurrentAgetsArePipelinedOnFewConnections) {
  PostgresServer& server = postgres_server();
  PostgresKVStore store(
      server.conninfo() + " application_name=kvdex_pipelined",
      {.table_name = unique_name("pipelined"), .pool_size = 2, .async_connections = 2});
  store.put_all_encoded(make_pairs("k", 2000), "data", 1000);
  std::vector<Future<std::optional<EncodedValue>>> futures;
  for (int i = 0; i < 2000; ++i) futures.push_back(store.aget_encoded("k" + std::to_string(i)));
  for (int i = 0; i < 2000; ++i) {
    std::optional<EncodedValue> value = futures[i].get();
    ASSERT_TRUE(value);
    EXPECT_EQ(value->decode()["i"], i);
  }
  EXPECT_FALSE(store.aget_encoded("absent").get().has_value());
  EXPECT_LE(std::stoi(server.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                                  "'kvdex_pipelined'")),
            4);
}

TEST(PostgresKVStore, AsyncBatchesLargerThanSocketBuffersCommitInOrder) {
  PostgresServer& server = postgres_server();
  PostgresKVStore store(server.conninfo(), {.table_name = unique_name("async_large")});
  std::vector<EncodedKeyValue> pairs;
  for (int i = 0; i < 3000; ++i) {
    pairs.emplace_back("big" + std::to_string(i),
                       EncodedValue::encode({{"i", i}, {"text", std::string(4000, 'a' + i % 26)}}));
  }
  // 12 MB in batches of 1,000 (4 MB each) while gets run on the same loops.
  Future<void> put = store.aput_all_encoded(pairs, "big", 1000);
  std::vector<Future<std::optional<EncodedValue>>> gets;
  for (int i = 0; i < 200; ++i)
    gets.push_back(store.aget_encoded("big" + std::to_string(i), "big"));
  put.get();
  for (auto& g : gets) g.get();  // present or not yet: either, but completed
  std::vector<EncodedKeyValue> all = store.aget_all_encoded("big").get();
  ASSERT_EQ(all.size(), pairs.size());
  for (std::size_t i = 0; i < all.size(); ++i) {
    ASSERT_EQ(all[i].first, pairs[i].first);
    ASSERT_EQ(all[i].second.text(), pairs[i].second.text());
  }
  WriteBatch batch;
  batch.remove("big", "big0");
  batch.put("big", "new", EncodedValue::encode({{"n", 1}}));
  store.awrite(std::move(batch)).get();
  EXPECT_FALSE(store.get_encoded("big0", "big").has_value());
  EXPECT_TRUE(store.aremove("new", "big").get());
  KVDEX_EXPECT_ERROR(store.aput("nan", {{"x", std::numeric_limits<double>::quiet_NaN()}}),
                     ErrorCode::kInvalidArgument);
}

TEST(PostgresKVStore, StatementTimeoutIsDeadlineExceeded) {
  PostgresServer& server = postgres_server();
  const std::string name = unique_name("timeout");
  PostgresKVStore store(server.conninfo(),
                        {.table_name = name, .statement_timeout = std::chrono::milliseconds(300)});
  // A session holding the table's lock for 3 s.
  const std::string lock_sql = "BEGIN; LOCK TABLE public.data_" + name + "; SELECT pg_sleep(3);";
  std::thread locker([&] { server.psql(lock_sql); });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  KVDEX_EXPECT_ERROR(store.put("k", {{"v", 1}}), ErrorCode::kDeadlineExceeded);
  locker.join();
  store.put("k", {{"v", 1}});
  EXPECT_EQ(store.count(), 1u);
}

TEST(PostgresKVStore, TerminatedConnectionsAreReplacedTransparently) {
  PostgresServer& server = postgres_server();
  PostgresKVStore store(server.conninfo() + " application_name=kvdex_terminated",
                        {.table_name = unique_name("terminated")});
  store.put("k", {{"v", 1}});
  EXPECT_TRUE(store.aget_encoded("k").get().has_value());
  for (int round = 0; round < 3; ++round) {
    const std::string killed = server.psql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = "
        "'kvdex_terminated'");
    EXPECT_NE(killed, "0");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_EQ(store.get("k"), (Value{{"v", 1}}));
    store.put("k2", {{"round", round}});
    EXPECT_EQ(store.aget("k2").get(), (Value{{"round", round}}));
  }
}

TEST(PostgresKVStore, ServerStoppedMidPutAllLeavesWholeBatchesOnly) {
  PostgresServer& server = postgres_server();
  PostgresKVStore store(server.conninfo(), {.table_name = unique_name("fault"),
                                            .connect_retries = 2,
                                            .retry_backoff = std::chrono::milliseconds(50)});
  constexpr int kBatch = 500;
  const std::vector<EncodedKeyValue> pairs = make_pairs("key", 400 * kBatch);
  std::atomic<int> acknowledged_calls{0};
  std::atomic<bool> failed{false};
  std::string failure;
  ErrorCode failure_code = ErrorCode::kInternal;
  // Each put_all call is one batch, so the writer knows which were acknowledged; the
  // last call is one large put_all of many batches.
  std::thread writer([&] {
    try {
      for (int call = 0; call < 400; ++call) {
        store.put_all_encoded(
            std::span(pairs).subspan(static_cast<std::size_t>(call) * kBatch, kBatch), "data",
            kBatch);
        ++acknowledged_calls;
      }
    } catch (const Error& e) {
      failure = e.what();
      failure_code = e.code();
      failed = true;
    }
  });
  while (acknowledged_calls < 20) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  server.stop_immediately();
  writer.join();
  server.start();
  ASSERT_TRUE(failed) << "the writer finished before the server stopped";
  EXPECT_EQ(failure_code, ErrorCode::kUnavailable) << failure;
  EXPECT_NE(failure.find("127.0.0.1:" + std::to_string(server.port())), std::string::npos)
      << failure;
  // The same store works again, and holds every acknowledged batch and whole batches only.
  const std::uint64_t rows = store.count();
  EXPECT_EQ(rows % kBatch, 0u) << "a batch was half applied";
  EXPECT_GE(rows, static_cast<std::uint64_t>(acknowledged_calls) * kBatch);
  EXPECT_LE(rows, static_cast<std::uint64_t>(acknowledged_calls + 1) * kBatch);
  for (int i = 0; i < acknowledged_calls * kBatch; i += 97) {
    EXPECT_TRUE(store.get_encoded(pairs[i].first).has_value()) << pairs[i].first;
  }
  store.put("after", {{"ok", true}});
  EXPECT_EQ(store.get("after"), (Value{{"ok", true}}));

  // One large put_all of many batches, cut off by the stop.
  std::atomic<bool> done{false};
  std::thread large([&] {
    try {
      store.put_all_encoded(pairs, "large", kBatch);
    } catch (const Error& e) {
      failure_code = e.code();
    }
    done = true;
  });
  while (store.count("large") < 10 * kBatch && !done)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  server.stop_immediately();
  large.join();
  server.start();
  EXPECT_EQ(failure_code, ErrorCode::kUnavailable);
  const std::uint64_t large_rows = store.count("large");
  EXPECT_EQ(large_rows % kBatch, 0u) << "a batch was half applied";
  EXPECT_GE(large_rows, 10u * kBatch);
  std::vector<EncodedKeyValue> stored = store.get_all_encoded("large");
  for (std::size_t i = 0; i < stored.size(); ++i) {
    ASSERT_EQ(stored[i].first, pairs[i].first) << "batches commit in order";
  }
}

TEST(PostgresKVStore, AsyncCallsWhileTheServerIsDownAreUnavailableThenRecover) {
  PostgresServer& server = postgres_server();
  PostgresKVStore store(server.conninfo(), {.table_name = unique_name("async_down"),
                                            .retry_backoff = std::chrono::milliseconds(10)});
  store.put("k", {{"v", 1}});
  EXPECT_TRUE(store.aget_encoded("k").get().has_value());  // the loop's connection is open
  server.stop_immediately();
  const std::string where = "127.0.0.1:" + std::to_string(server.port());
  for (int round = 0; round < 2; ++round) {
    try {
      store.aget_encoded("k").get();
      ADD_FAILURE() << "a get succeeded with the server down";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kUnavailable) << e.what();
      EXPECT_NE(std::string(e.what()).find(where), std::string::npos) << e.what();
    }
    KVDEX_EXPECT_ERROR(store.aput("w", {{"v", 2}}).get(), ErrorCode::kUnavailable);
    KVDEX_EXPECT_ERROR(store.get("k"), ErrorCode::kUnavailable);
  }
  server.start();
  EXPECT_EQ(store.aget("k").get(), (Value{{"v", 1}}));
  store.aput("w", {{"v", 2}}).get();
  EXPECT_EQ(store.get("w"), (Value{{"v", 2}}));
}

TEST(PostgresKVStore, MissingTableWithoutSetupIsNotFound) {
  PostgresServer& server = postgres_server();
  try {
    PostgresKVStore store(server.conninfo(),
                          {.table_name = unique_name("absent"), .perform_setup = false});
    ADD_FAILURE() << "opened a missing table";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_NE(std::string(e.what()).find("data_absent"), std::string::npos) << e.what();
  }
}

TEST(PostgresKVStore, ClosedStoreRefusesCalls) {
  PostgresKVStore store(postgres_server().conninfo(), {.table_name = unique_name("closed")});
  store.put("k", {{"v", 1}});
  store.close();
  KVDEX_EXPECT_ERROR(store.get("k"), ErrorCode::kFailedPrecondition);
  KVDEX_EXPECT_ERROR(store.aget("k"), ErrorCode::kFailedPrecondition);
  store.close();
}

}  // namespace
}  // namespace kvdex::testing
