// The shared conformance suite over LmdbKVStore: once with the defaults, once with a
// 64 KiB initial map and kNoMetaSync, so that every conformance test also runs
// through map growth.
#include "conformance/kvstore_conformance.h"
#include "kvdex/lmdb_kvstore.h"

namespace kvdex::testing {
namespace {

struct LmdbTraits {
  static constexpr bool kInsertionOrdered = true;
  TempDir dir;
  std::unique_ptr<BaseKVStore> make() { return std::make_unique<LmdbKVStore>(dir.file("store")); }
};

struct LmdbTinyMapTraits {
  static constexpr bool kInsertionOrdered = true;
  TempDir dir;
  std::unique_ptr<BaseKVStore> make() {
    return std::make_unique<LmdbKVStore>(
        dir.file("store"),
        LmdbOptions{.map_size = 64 << 10, .durability = LmdbDurability::kNoMetaSync});
  }
};

using LmdbTypes = ::testing::Types<LmdbTraits, LmdbTinyMapTraits>;
INSTANTIATE_TYPED_TEST_SUITE_P(Lmdb, KVStoreConformance, LmdbTypes);

}  // namespace
}  // namespace kvdex::testing
