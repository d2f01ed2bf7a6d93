// The shared conformance suite over RedisKVStore, against a real redis-server started
// for this binary (one server; each test starts from an empty database).
#include "conformance/kvstore_conformance.h"
#include "kvdex/redis_kvstore.h"
#include "redis/redis_test_server.h"

namespace kvdex::testing {
namespace {

RedisTestServer& shared_server() {
  static RedisTestServer* server = new RedisTestServer();  // killed at exit, below
  static const bool registered = [] {
    std::atexit([] { shared_server().kill(); });
    return true;
  }();
  static_cast<void>(registered);
  return *server;
}

struct RedisTraits {
  static constexpr bool kInsertionOrdered = false;  // a Redis hash keeps no order
  std::unique_ptr<BaseKVStore> make() {
    shared_server().command({"FLUSHALL"});
    return std::make_unique<RedisKVStore>(parse_redis_uri(shared_server().uri()));
  }
};

// A small pool and one async connection: every test also runs through waiting for a
// connection and through pipelining many callers' commands on one.
struct RedisSmallPoolTraits {
  static constexpr bool kInsertionOrdered = false;
  std::unique_ptr<BaseKVStore> make() {
    shared_server().command({"FLUSHALL"});
    return std::make_unique<RedisKVStore>(
        parse_redis_uri(shared_server().uri("/3?pool=2&async_connections=1&scan_count=3")));
  }
};

using RedisTypes = ::testing::Types<RedisTraits, RedisSmallPoolTraits>;
INSTANTIATE_TYPED_TEST_SUITE_P(Redis, KVStoreConformance, RedisTypes);

}  // namespace
}  // namespace kvdex::testing
