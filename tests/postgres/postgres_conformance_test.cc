// The shared conformance suite over PostgresKVStore, with a json value column and
// with a jsonb one; each test gets a table of its own.
#include <atomic>
#include <string>

#include "conformance/kvstore_conformance.h"
#include "kvdex/postgres_kvstore.h"
#include "postgres/postgres_server.h"

namespace kvdex::testing {
namespace {

std::string fresh_table_name() {
  static std::atomic<int> next{0};
  return "conformance_" + std::to_string(getpid()) + "_" + std::to_string(next++);
}

struct PostgresJsonTraits {
  static constexpr bool kInsertionOrdered = true;
  static constexpr bool kStoresNonFiniteNumbers = false;
  static constexpr bool kNamesMayHoldNul = false;
  std::unique_ptr<BaseKVStore> make() {
    return std::make_unique<PostgresKVStore>(postgres_server().conninfo(),
                                             PostgresOptions{.table_name = fresh_table_name()});
  }
};

struct PostgresJsonbTraits {
  static constexpr bool kInsertionOrdered = true;
  static constexpr bool kKeepsValueText = false;
  static constexpr bool kStoresNonFiniteNumbers = false;
  static constexpr bool kNamesMayHoldNul = false;
  std::unique_ptr<BaseKVStore> make() {
    return std::make_unique<PostgresKVStore>(
        postgres_server().conninfo(),
        PostgresOptions{.table_name = fresh_table_name(), .use_jsonb = true});
  }
};

using PostgresTypes = ::testing::Types<PostgresJsonTraits, PostgresJsonbTraits>;
INSTANTIATE_TYPED_TEST_SUITE_P(Postgres, KVStoreConformance, PostgresTypes);

}  // namespace
}  // namespace kvdex::testing
