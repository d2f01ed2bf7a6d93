// Redis Cluster key slots: which of the 16384 hash slots a Redis key belongs to.
//
// The rule is the Redis Cluster specification's (https://redis.io/docs/reference/
// cluster-spec/, "Keys distribution model"): CRC16-XMODEM (polynomial 0x1021, initial
// value 0, no reflection) of the key modulo 16384, where a hash tag restricts the bytes
// hashed: if the key contains '{' and, after the first '{', a '}', and at least one byte
// lies between them, only the bytes between that first '{' and the first '}' after it
// are hashed. Keys are arbitrary bytes (embedded NUL, CR/LF, non-UTF-8 all allowed).
//
// Thread safety: pure functions over their arguments; call them from any thread.
// Errors: none (every byte string has a slot).
#ifndef KVDEX_SRC_REDIS_HASH_SLOT_H_
#define KVDEX_SRC_REDIS_HASH_SLOT_H_

#include <cstdint>
#include <string_view>

namespace kvdex::redis {

// Number of hash slots in a Redis Cluster.
inline constexpr int kClusterSlotCount = 16384;

// CRC16-XMODEM of `bytes`, as Redis's crc16.c computes it (crc16("123456789") == 0x31C3).
std::uint16_t crc16_xmodem(std::string_view bytes) noexcept;

// The part of `key` that is hashed: the hash tag if the key has a non-empty one, else
// the whole key.
std::string_view hash_tag_of(std::string_view key) noexcept;

// The key's slot in [0, kClusterSlotCount): what `CLUSTER KEYSLOT key` answers.
int key_hash_slot(std::string_view key) noexcept;

}  // namespace kvdex::redis

#endif  // KVDEX_SRC_REDIS_HASH_SLOT_H_
