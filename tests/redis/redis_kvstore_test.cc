// RedisKVStore's own tests, each against a real redis-server started for it: the
// URI, LlamaIndex's layout byte for byte, names that would be syntax in a text
// protocol, values over proto-max-bulk-len, a server that dies (SIGKILL) and comes
// back, AUTH and SELECT, timeouts, and how many connections the async layer opens.
#include "kvdex/redis_kvstore.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <set>
#include <thread>
#include <vector>

#include "kvdex/kvdex.h"
#include "redis/redis_test_server.h"

namespace kvdex::testing {
namespace {

std::int64_t info_field(const RedisTestServer& server, std::string_view section,
                        std::string_view field) {
  const std::string info = server.command({"INFO", section});
  const std::string needle = std::string(field) + ":";
  const auto at = info.find(needle);
  if (at == std::string::npos) return -1;
  return std::stoll(info.substr(at + needle.size()));
}

std::string error_text(const std::function<void()>& call, ErrorCode expected) {
  try {
    call();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), expected) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected kvdex::Error(" << error_code_name(expected) << ")";
  return "";
}

// ---- URI --------------------------------------------------------------------------

TEST(RedisUri, ParsesEveryPart) {
  const RedisOptions o = parse_redis_uri(
      "redis://al%40ice:p%3Ass@example.org:7000/4?timeout_ms=250&pool=3&async_connections=1&"
      "retries=0&backoff_ms=5&scan_count=10");
  EXPECT_EQ(o.user, "al@ice");
  EXPECT_EQ(o.password, "p:ss");
  EXPECT_EQ(o.host, "example.org");
  EXPECT_EQ(o.port, 7000);
  EXPECT_EQ(o.db, 4);
  EXPECT_EQ(o.connect_timeout.count(), 250);
  EXPECT_EQ(o.command_timeout.count(), 250);
  EXPECT_EQ(o.pool_size, 3);
  EXPECT_EQ(o.async_connections, 1);
  EXPECT_EQ(o.retries, 0);
  EXPECT_EQ(o.retry_backoff.count(), 5);
  EXPECT_EQ(o.scan_count, 10);
}

TEST(RedisUri, DefaultsAreLlamaIndexs) {
  const RedisOptions o = parse_redis_uri("redis://");
  EXPECT_EQ(o.host, "127.0.0.1");
  EXPECT_EQ(o.port, 6379);
  EXPECT_EQ(o.db, 0);
  EXPECT_TRUE(o.password.empty());
  const RedisOptions only_password = parse_redis_uri("redis://secret@[::1]:6380");
  EXPECT_EQ(only_password.password, "secret");
  EXPECT_TRUE(only_password.user.empty());
  EXPECT_EQ(only_password.host, "::1");
  EXPECT_EQ(only_password.port, 6380);
}

TEST(RedisUri, RefusesTlsAndBadInputClearly) {
  EXPECT_NE(error_text([] { parse_redis_uri("rediss://127.0.0.1:6379"); }, ErrorCode::kNotSupported)
                .find("TLS"),
            std::string::npos);
  EXPECT_NE(error_text([] { kvdex::open("rediss://127.0.0.1:6379"); }, ErrorCode::kNotSupported)
                .find("TLS"),
            std::string::npos);
  EXPECT_NE(
      error_text([] { parse_redis_uri("redis://h:1/0?colour=red"); }, ErrorCode::kInvalidArgument)
          .find("colour"),
      std::string::npos);
  KVDEX_EXPECT_ERROR(parse_redis_uri("redis://h:99999"), ErrorCode::kInvalidArgument);
  KVDEX_EXPECT_ERROR(parse_redis_uri("redis://h:1/x"), ErrorCode::kInvalidArgument);
  KVDEX_EXPECT_ERROR(parse_redis_uri("redis://h:1?pool=0"), ErrorCode::kInvalidArgument);
  KVDEX_EXPECT_ERROR(parse_redis_uri("redis://%zz@h"), ErrorCode::kInvalidArgument);
  // cluster=1 and shards=N are RedisClusterKVStore's (tests/redis_cluster/); a plain
  // RedisKVStore refuses them.
  EXPECT_NE(dynamic_cast<RedisClusterKVStore*>(kvdex::open("redis://127.0.0.1:1?cluster=1").get()),
            nullptr);
  KVDEX_EXPECT_ERROR(RedisKVStore(parse_redis_uri("redis://127.0.0.1:1?shards=2")),
                     ErrorCode::kInvalidArgument);
}

// ---- Layout -----------------------------------------------------------------------

TEST(RedisKVStore, KeepsLlamaIndexsLayoutByteForByte) {
  RedisTestServer server;
  auto store = kvdex::open(server.uri());
  store->put("node-1", {{"text", "héllo"}, {"n", 1.5}, {"tags", {"a", "b"}}}, "docstore/data");
  EXPECT_EQ(server.command({"TYPE", "docstore/data"}), "hash");
  // json.dumps({"text": "héllo", "n": 1.5, "tags": ["a", "b"]})
  EXPECT_EQ(server.command({"HGET", "docstore/data", "node-1"}),
            R"({"text": "h\u00e9llo", "n": 1.5, "tags": ["a", "b"]})");
  // What LlamaIndex's RedisKVStore.put writes (hset(name=collection, key, json.dumps(val))).
  server.command({"HSET", "data", "from-python", R"({"a": [1, 2.0, null, true], "b": NaN})"});
  std::optional<EncodedValue> read = store->get_encoded("from-python");
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->text(), R"({"a": [1, 2.0, null, true], "b": NaN})");
  EXPECT_EQ(store->count("docstore/data"), 1u);
  EXPECT_TRUE(store->remove("node-1", "docstore/data"));
  EXPECT_EQ(server.command({"EXISTS", "docstore/data"}), "0");
}

TEST(RedisKVStore, ReadsOtherJsonSpellingsAndReportsGarbageAsCorruption) {
  RedisTestServer server;
  auto store = kvdex::open(server.uri());
  server.command({"HSET", "c", "compact", R"({"a":1,"b":[true]})"});
  server.command({"HSET", "c", "garbage", "not json"});
  server.command({"HSET", "c", "array", "[1, 2]"});
  EXPECT_EQ(store->get_encoded("compact", "c")->text(), R"({"a": 1, "b": [true]})");
  const std::string message =
      error_text([&] { store->get("garbage", "c"); }, ErrorCode::kCorruption);
  EXPECT_NE(message.find("\"garbage\""), std::string::npos) << message;
  EXPECT_NE(message.find(server.address()), std::string::npos) << message;
  KVDEX_EXPECT_ERROR(store->get("array", "c"), ErrorCode::kCorruption);
  KVDEX_EXPECT_ERROR(store->get_all("c"), ErrorCode::kCorruption);
  KVDEX_EXPECT_ERROR(store->aget_all("c").get(), ErrorCode::kCorruption);
}

TEST(RedisKVStore, CollectionsListsEveryHashOfTheDatabase) {
  RedisTestServer server;
  auto store = kvdex::open(server.uri("/2"));
  store->put("k", {{"v", 1}}, "b/data");
  store->put("k", {{"v", 1}}, "a/data");
  server.command({"SET", "plain-string", "x"});  // a key of another type in db 2
  server.command({"MOVE", "plain-string", "2"});
  server.command({"HSET", "db0-hash", "k", "{}"});  // a hash of another database
  EXPECT_EQ(store->collections(), (std::vector<std::string>{"a/data", "b/data"}));
}

TEST(RedisKVStore, ACollectionNamedLikeAnotherTypesKeyIsFailedPrecondition) {
  RedisTestServer server;
  auto store = kvdex::open(server.uri());
  server.command({"SET", "plain", "x"});
  const std::string message = error_text(
      [&] {
        store->put("k", {{"v", 1}}, "plain");
      },
      ErrorCode::kFailedPrecondition);
  EXPECT_NE(message.find("not a hash"), std::string::npos) << message;
  KVDEX_EXPECT_ERROR(store->get("k", "plain"), ErrorCode::kFailedPrecondition);
  KVDEX_EXPECT_ERROR(store->aput("k", {{"v", 1}}, "plain").get(), ErrorCode::kFailedPrecondition);
}

TEST(RedisKVStore, ABatchOverSeveralCollectionsIsNeverHalfAppliedOnWrongType) {
  RedisTestServer server;
  auto store = kvdex::open(server.uri());
  server.command({"SET", "plain", "x"});
  WriteBatch batch;
  batch.put("good", "k", EncodedValue::encode({{"v", 1}}));
  batch.put("plain", "k", EncodedValue::encode({{"v", 2}}));
  batch.remove("good", "other");
  const std::string message =
      error_text([&] { store->write(batch); }, ErrorCode::kFailedPrecondition);
  EXPECT_NE(message.find("\"plain\""), std::string::npos) << message;
  EXPECT_EQ(server.command({"EXISTS", "good"}), "0") << "half of the batch was applied";
  KVDEX_EXPECT_ERROR(store->awrite(batch).get(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(server.command({"EXISTS", "good"}), "0");
  WriteBatch fine;
  fine.put("good", "k", EncodedValue::encode({{"v", 1}}));
  fine.put("other", "k", EncodedValue::encode({{"v", 2}}));
  store->write(fine);
  store->awrite(fine).get();
  EXPECT_EQ(store->get("k", "other"), (Value{{"v", 2}}));
  // The connection is usable after the refusal (no WATCH left behind).
  EXPECT_EQ(store->get("k", "good"), (Value{{"v", 1}}));
}

// ---- Bad input --------------------------------------------------------------------

TEST(RedisKVStore, NamesThatWouldBeSyntaxRoundTripAsData) {
  RedisTestServer server;
  auto store = kvdex::open(server.uri("?scan_count=2"));
  const std::vector<std::string> names = {"with space",
                                          "cr\rlf\n*3\r\n$3\r\nDEL\r\n",
                                          "quote\"s' and `back`",
                                          "{hash}{tag}",
                                          "*",
                                          "glob?[a-z]*",
                                          "日本語 ü",
                                          std::string(10 * 1024, 'k') + "end",
                                          "FLUSHALL"};
  for (const std::string& collection : names) {
    for (const std::string& key : names) {
      store->put(key, {{"c", collection}, {"k", key}}, collection);
    }
  }
  for (const std::string& collection : names) {
    EXPECT_EQ(server.command({"TYPE", collection}), "hash") << collection.substr(0, 40);
    EXPECT_EQ(store->count(collection), names.size());
    for (const std::string& key : names) {
      EXPECT_EQ(store->get(key, collection), (Value{{"c", collection}, {"k", key}}));
    }
    std::size_t seen = 0;
    for (const auto& [key, value] : store->aget_all(collection).get()) {
      EXPECT_EQ(value, (Value{{"c", collection}, {"k", key}}));
      ++seen;
    }
    EXPECT_EQ(seen, names.size());
  }
  const std::vector<std::string> listed = store->collections();
  EXPECT_EQ(listed.size(), names.size());
  EXPECT_TRUE(store->remove("*", "*"));
  EXPECT_EQ(store->count("*"), names.size() - 1);
}

TEST(RedisKVStore, AValueOverProtoMaxBulkLenIsRefusedBeforeAnythingIsSent) {
  RedisTestServer server;  // proto-max-bulk-len 1mb
  auto store = kvdex::open(server.uri());
  const Value huge{{"text", std::string(100u << 20, 'x')}};
  const EncodedValue huge_encoded = EncodedValue::encode(huge);
  std::vector<EncodedKeyValue> pairs = {{"small", EncodedValue::encode({{"v", 1}})},
                                        {"huge", huge_encoded}};
  const std::string message =
      error_text([&] { store->put_all_encoded(pairs, "big", 10); }, ErrorCode::kInvalidArgument);
  EXPECT_NE(message.find("proto-max-bulk-len"), std::string::npos) << message;
  EXPECT_NE(message.find(server.address()), std::string::npos) << message;
  EXPECT_NE(message.find("\"huge\""), std::string::npos) << message;
  EXPECT_FALSE(store->get("small", "big").has_value()) << "half of the batch was written";
  KVDEX_EXPECT_ERROR(store->aput_all_encoded(pairs, "big", 10).get(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(store->get("small", "big").has_value());
  // Just under the limit is stored.
  const Value fits{{"text", std::string((1u << 20) - 64, 'y')}};
  store->put("fits", fits, "big");
  EXPECT_EQ(store->get("fits", "big"), fits);
  // A server with a larger limit takes the 100 MB value.
  RedisTestServer roomy({"--proto-max-bulk-len", "200mb"});
  auto roomy_store = kvdex::open(roomy.uri());
  roomy_store->put_encoded("huge", huge_encoded, "big");
  EXPECT_EQ(roomy_store->get_encoded("huge", "big")->size(), huge_encoded.size());
}

// ---- Failures ---------------------------------------------------------------------

TEST(RedisKVStore, ADeadServerIsUnavailableNamingItAndTheStoreReconnects) {
  RedisTestServer server;
  auto store = kvdex::open(server.uri("?retries=2&backoff_ms=5"));
  store->put("k", {{"v", 1}});
  EXPECT_EQ(store->aget("k").get(), (Value{{"v", 1}}));
  server.kill();
  std::string message = error_text([&] { store->get("k"); }, ErrorCode::kUnavailable);
  EXPECT_NE(message.find(server.address()), std::string::npos) << message;
  message = error_text([&] { store->aget("k").get(); }, ErrorCode::kUnavailable);
  EXPECT_NE(message.find(server.address()), std::string::npos) << message;
  KVDEX_EXPECT_ERROR(store->put("k", {{"v", 2}}), ErrorCode::kUnavailable);
  KVDEX_EXPECT_ERROR(store->aput_all({{"a", {{"v", 1}}}}, "data", 1).get(),
                     ErrorCode::kUnavailable);
  server.restart();  // nothing persisted: the server comes back empty
  store->put("k", {{"v", 3}});
  EXPECT_EQ(store->get("k"), (Value{{"v", 3}}));
  EXPECT_EQ(store->aget("k").get(), (Value{{"v", 3}}));
  // Restarted under idle connections: the next calls still succeed.
  server.restart();
  EXPECT_FALSE(store->get("k").has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the loop sees the EOF
  EXPECT_FALSE(store->aget("k").get().has_value());
}

TEST(RedisKVStore, AnUnreachableServerFailsAfterBoundedRetries) {
  const int port = free_loopback_port();
  auto store =
      kvdex::open("redis://127.0.0.1:" + std::to_string(port) + "?retries=3&backoff_ms=20");
  const auto start = std::chrono::steady_clock::now();
  const std::string message = error_text([&] { store->get("k"); }, ErrorCode::kUnavailable);
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_NE(message.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << message;
  EXPECT_GE(waited, std::chrono::milliseconds(20 + 40 + 80));  // three backoffs
  EXPECT_LT(waited, std::chrono::seconds(5));
}

TEST(RedisKVStore, CommandTimeoutIsDeadlineExceeded) {
  RedisTestServer server;
  auto store = kvdex::open(server.uri("?command_timeout_ms=150&retries=0"));
  store->put("k", {{"v", 1}});
  EXPECT_EQ(store->aget("k").get(), (Value{{"v", 1}}));
  server.command({"CLIENT", "PAUSE", "1500", "ALL"});
  KVDEX_EXPECT_ERROR(store->get("k"), ErrorCode::kDeadlineExceeded);
  KVDEX_EXPECT_ERROR(store->aget("k").get(), ErrorCode::kDeadlineExceeded);
  std::this_thread::sleep_for(std::chrono::milliseconds(1600));
  EXPECT_EQ(store->get("k"), (Value{{"v", 1}}));
  EXPECT_EQ(store->aget("k").get(), (Value{{"v", 1}}));
}

TEST(RedisKVStore, AuthenticatesWithPasswordOrAclUserAndSelectsTheDatabase) {
  RedisTestServer server({"--requirepass", "s3cret"});
  server.command({"ACL", "SETUSER", "alice", "on", ">w0nder", "~*", "+@all"}, "s3cret");
  const std::string port = std::to_string(server.port());
  KVDEX_EXPECT_ERROR(kvdex::open(server.uri())->get("k"), ErrorCode::kPermissionDenied);
  KVDEX_EXPECT_ERROR(kvdex::open(server.uri())->aget("k").get(), ErrorCode::kPermissionDenied);
  KVDEX_EXPECT_ERROR(kvdex::open("redis://wrong@127.0.0.1:" + port)->get("k"),
                     ErrorCode::kPermissionDenied);
  auto by_password = kvdex::open("redis://s3cret@127.0.0.1:" + port + "/5");
  auto by_user = kvdex::open("redis://alice:w0nder@127.0.0.1:" + port + "/5");
  auto other_db = kvdex::open("redis://:s3cret@127.0.0.1:" + port + "/6");
  by_password->put("k", {{"v", 5}});
  EXPECT_EQ(by_user->get("k"), (Value{{"v", 5}}));
  EXPECT_EQ(by_user->aget("k").get(), (Value{{"v", 5}}));
  EXPECT_FALSE(other_db->get("k").has_value());
  EXPECT_FALSE(other_db->aget("k").get().has_value());
  KVDEX_EXPECT_ERROR(kvdex::open("redis://:s3cret@127.0.0.1:" + port + "/100000")->get("k"),
                     ErrorCode::kInvalidArgument);
}

TEST(RedisKVStore, ReadOnlyRefusesWrites) {
  RedisTestServer server;
  auto store = kvdex::open(server.uri(), {.read_only = true});
  KVDEX_EXPECT_ERROR(store->put("k", {{"v", 1}}), ErrorCode::kNotSupported);
  KVDEX_EXPECT_ERROR(store->aput("k", {{"v", 1}}).get(), ErrorCode::kNotSupported);
  EXPECT_FALSE(store->get("k").has_value());
}

TEST(RedisKVStore, CloseWaitsClosesTheConnectionsAndRefusesLaterCalls) {
  RedisTestServer server;
  auto store = kvdex::open(server.uri());
  store->put("k", {{"v", 1}});
  std::vector<Future<std::optional<Value>>> reads;
  for (int i = 0; i < 100; ++i) reads.push_back(store->aget("k"));
  store->close();
  for (auto& f : reads) EXPECT_EQ(f.get(), (Value{{"v", 1}}));  // finished before close
  KVDEX_EXPECT_ERROR(store->get("k"), ErrorCode::kFailedPrecondition);
  KVDEX_EXPECT_ERROR(store->aget("k").get(), ErrorCode::kFailedPrecondition);
  KVDEX_EXPECT_ERROR(store->put("k", {{"v", 2}}), ErrorCode::kFailedPrecondition);
  KVDEX_EXPECT_ERROR(store->collections(), ErrorCode::kFailedPrecondition);
  store->close();  // again: nothing
  // The server sees only the INFO connection of this helper.
  EXPECT_EQ(info_field(server, "clients", "connected_clients"), 1);
}

// SIGKILL in the middle of put_all calls, with every write fsynced (AOF, always):
// the failing call reports kUnavailable naming the server, every batch of every
// call that returned is there after the restart, no batch is there in part, and the
// same store object works again.
TEST(RedisKVStore, KilledMidPutAllLosesNoAcknowledgedBatchAndHalvesNone) {
  RedisTestServer server({"--appendonly", "yes", "--appendfsync", "always"});
  auto store = kvdex::open(server.uri("?retries=1&backoff_ms=10"));
  constexpr int kBatch = 100;
  constexpr int kBatchesPerCall = 10;
  const std::string filler(300, 'f');
  auto key_of = [](int call, int batch, int i) {
    return "c" + std::to_string(call) + "-b" + std::to_string(batch) + "-" + std::to_string(i);
  };
  std::atomic<int> acknowledged_calls{0};
  std::atomic<bool> stop_polling{false};
  std::string failure;
  ErrorCode failure_code = ErrorCode::kInternal;
  int failed_call = -1;
  std::thread writer([&] {
    for (int call = 0; call < 100000; ++call) {
      std::vector<KeyValue> pairs;
      for (int b = 0; b < kBatchesPerCall; ++b)
        for (int i = 0; i < kBatch; ++i)
          pairs.emplace_back(key_of(call, b, i), Value{{"call", call}, {"f", filler}});
      try {
        store->put_all(pairs, "fault", kBatch);
        acknowledged_calls.store(call + 1);
      } catch (const Error& e) {
        failure = e.what();
        failure_code = e.code();
        failed_call = call;
        return;
      }
    }
  });
  while (acknowledged_calls.load() < 20) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  server.kill();
  writer.join();
  stop_polling = true;
  EXPECT_EQ(failure_code, ErrorCode::kUnavailable) << failure;
  EXPECT_NE(failure.find(server.address()), std::string::npos) << failure;
  ASSERT_GE(failed_call, 20);
  server.restart();  // reloads the AOF
  const int acked = acknowledged_calls.load();
  std::size_t present = 0;
  std::vector<EncodedKeyValue> all = store->get_all_encoded("fault");
  std::set<std::string> keys;
  for (const auto& [key, value] : all) keys.insert(key);
  for (int call = 0; call <= failed_call; ++call) {
    for (int b = 0; b < kBatchesPerCall; ++b) {
      int in_batch = 0;
      for (int i = 0; i < kBatch; ++i) in_batch += keys.count(key_of(call, b, i)) ? 1 : 0;
      if (call < acked) {
        EXPECT_EQ(in_batch, kBatch) << "acknowledged call " << call << " batch " << b;
      } else {
        EXPECT_TRUE(in_batch == 0 || in_batch == kBatch)
            << "call " << call << " batch " << b << " half applied: " << in_batch;
      }
      present += static_cast<std::size_t>(in_batch);
    }
  }
  EXPECT_EQ(present, keys.size()) << "keys of calls that never started";
  store->put("after", {{"v", 1}}, "fault");
  EXPECT_EQ(store->get("after", "fault"), (Value{{"v", 1}}));
}

// ---- Connections ------------------------------------------------------------------

TEST(RedisKVStore, ManyConcurrentAgetsArePipelinedOnFewConnections) {
  RedisTestServer server;
  auto store_owner = kvdex::open(server.uri());
  auto& store = static_cast<RedisKVStore&>(*store_owner);
  std::vector<KeyValue> pairs;
  for (int i = 0; i < 1000; ++i) pairs.emplace_back("k" + std::to_string(i), Value{{"i", i}});
  store.put_all(pairs, "data", 1000);
  const std::int64_t before = info_field(server, "stats", "total_connections_received");
  std::vector<Future<std::optional<Value>>> futures;
  for (int round = 0; round < 10; ++round)
    for (int i = 0; i < 1000; ++i) futures.push_back(store.aget("k" + std::to_string(i)));
  for (std::size_t i = 0; i < futures.size(); ++i) {
    EXPECT_EQ(futures[i].get(), (Value{{"i", static_cast<int>(i % 1000)}}));
  }
  const std::int64_t after = info_field(server, "stats", "total_connections_received");
  // Two async connections (the default) plus the one INFO itself opened.
  EXPECT_LE(after - before, 3) << "connections opened for 10,000 agets";
  EXPECT_LE(store.connections_opened(), 3u);  // 1 sync (put_all) + 2 async
  EXPECT_LE(info_field(server, "clients", "connected_clients"), 4);
}

TEST(RedisKVStore, ManyThreadsShareTheBoundedPool) {
  RedisTestServer server;
  auto store_owner = kvdex::open(server.uri("?pool=3"));
  auto& store = static_cast<RedisKVStore&>(*store_owner);
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 12; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        const std::string key = std::to_string(t) + "-" + std::to_string(i);
        store.put(key, {{"t", t}});
        if (store.get(key) != Value{{"t", t}}) ++wrong;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(store.count(), 1200u);
  EXPECT_LE(store.connections_opened(), 3u);
}

}  // namespace
}  // namespace kvdex::testing
