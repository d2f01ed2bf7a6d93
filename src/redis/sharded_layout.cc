#include "redis/sharded_layout.h"

#include <charconv>
#include <cstdio>

#include "kvdex/error.h"
#include "redis/hash_slot.h"

namespace kvdex::redis {
namespace {

constexpr std::string_view kMarkerPrefix = "kvdex-sharded-collection v1 shards=";
constexpr int kMaxTagSearch = 1 << 20;

}  // namespace

std::string sharded_marker_value(int shards) {
  return std::string(kMarkerPrefix) + std::to_string(shards);
}

std::optional<int> parse_sharded_marker(std::string_view value, std::string_view collection) {
  if (!value.starts_with("kvdex-sharded-collection")) return std::nullopt;
  int shards = 0;
  const std::string_view count =
      value.starts_with(kMarkerPrefix) ? value.substr(kMarkerPrefix.size()) : std::string_view();
  const auto [end, ec] = std::from_chars(count.data(), count.data() + count.size(), shards);
  if (count.empty() || ec != std::errc() || end != count.data() + count.size() ||
      shards < kMinShards || shards > kMaxShards) {
    throw Error(ErrorCode::kCorruption, "collection '" + shorten_for_message(collection) +
                                            "' has an unreadable kvdex sharded-layout marker: '" +
                                            shorten_for_message(value) + "' (expected '" +
                                            std::string(kMarkerPrefix) + "N', N in " +
                                            std::to_string(kMinShards) + ".." +
                                            std::to_string(kMaxShards) + ")");
  }
  return shards;
}

std::uint64_t fnv1a_64(std::string_view bytes) noexcept {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (const char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

int shard_of_key(std::string_view key, int shards) noexcept {
  return static_cast<int>(fnv1a_64(key) % static_cast<std::uint64_t>(shards));
}

std::string shard_hash_name(std::string_view collection, int shard, int shards) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a_64(collection)));
  const std::string tag_prefix =
      "kvdex-shard:" + std::string(hex) + ":" + std::to_string(shard) + ":";
  const long long first_slot = static_cast<long long>(shard) * kClusterSlotCount / shards;
  const long long end_slot = static_cast<long long>(shard + 1) * kClusterSlotCount / shards;
  int chosen = 0;
  for (int attempt = 0; attempt < kMaxTagSearch; ++attempt) {
    const int slot = key_hash_slot(tag_prefix + std::to_string(attempt));
    if (slot >= first_slot && slot < end_slot) {
      chosen = attempt;
      break;
    }
  }
  return "{" + tag_prefix + std::to_string(chosen) + "}" + std::string(collection);
}

}  // namespace kvdex::redis
