// How kvdex keys of any length (including the empty key) live under LMDB's key size
// limit (511 bytes in Debian's build). Part of the on-disk format (docs/lmdb.md).
//
// A keyspace is the set of LMDB keys starting with a tag: "" in a collection's
// database, "n" for the name index of the catalogue. Inside a keyspace:
//   - inline form, for keys of 1..kMaxInlineKey bytes:
//       LMDB key = tag + key                      LMDB data = payload
//   - hashed form, for the empty key and keys longer than kMaxInlineKey:
//       LMDB key = tag + first kMaxInlineKey bytes of the key (zero-padded)
//                  + 64-bit hash of the whole key (big-endian)
//                  + 16-bit collision counter (big-endian)
//       LMDB data = u32 little-endian key length + key + payload
// The two forms never collide because they differ in length. Keys whose first
// kMaxInlineKey bytes and hash agree form a group (adjacent in LMDB order); lookups
// walk the group and compare the full key, so hash collisions are handled.
// The hash is FNV-1a 64, fixed forever (it is on disk).
#ifndef KVDEX_SRC_LMDB_KEY_CODEC_H_
#define KVDEX_SRC_LMDB_KEY_CODEC_H_

#include <lmdb.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "lmdb/lmdb_error.h"

namespace kvdex::detail {

inline constexpr std::size_t kMaxInlineKey = 480;
// A keyspace tag is at most this long (a collection id), so an inline key with its tag
// is built on the stack: lookups and inserts allocate nothing.
inline constexpr std::size_t kMaxTagBytes = 8;
inline constexpr std::size_t kKeyHashBytes = 8;
inline constexpr std::size_t kKeyCounterBytes = 2;
inline constexpr std::size_t kHashedKeySuffix = kMaxInlineKey + kKeyHashBytes + kKeyCounterBytes;

using KeyHashFn = std::uint64_t (*)(std::string_view);

// FNV-1a, 64-bit: the hash of the on-disk format.
std::uint64_t fnv1a64(std::string_view bytes) noexcept;

inline std::string_view as_view(const MDB_val& v) noexcept {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}
inline MDB_val as_val(std::string_view s) noexcept {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}

// An open cursor, closed when the scope ends (which must be before a write
// transaction ends; a read transaction's cursor may also outlive it).
class LmdbCursor {
 public:
  LmdbCursor(MDB_txn* txn, MDB_dbi dbi, const LmdbErrorContext& context);
  ~LmdbCursor() { mdb_cursor_close(cursor_); }
  LmdbCursor(const LmdbCursor&) = delete;
  LmdbCursor& operator=(const LmdbCursor&) = delete;
  MDB_cursor* get() const noexcept { return cursor_; }

 private:
  MDB_cursor* cursor_ = nullptr;
};

class KeyCodec {
 public:
  // `tag` (at most kMaxTagBytes) must outlive the codec. `hash` is replaceable for tests
  // only.
  explicit KeyCodec(std::string_view tag = {}, KeyHashFn hash = &fnv1a64) noexcept
      : tag_(tag), hash_(hash) {}

  struct Entry {
    std::string_view key;      // the kvdex key
    std::string_view payload;  // collection: sequence number + value text; catalogue: id
  };

  static bool is_inline(std::string_view key) noexcept {
    return !key.empty() && key.size() <= kMaxInlineKey;
  }
  std::string_view tag() const noexcept { return tag_; }

  // What reserve() did.
  struct Reserved {
    char* payload;  // payload_size bytes to fill before the transaction's next write
    bool existed;   // the key was there (and old_head holds its old payload's head)
  };

  // The payload stored for `key`, pointing into the map (valid during the txn).
  std::optional<std::string_view> get(MDB_txn* txn, MDB_dbi dbi, std::string_view key,
                                      const LmdbErrorContext& context) const;
  // Inserts `key` or overwrites it with a payload of `payload_size` bytes that the
  // caller writes at the returned address (LMDB's MDB_RESERVE: no copy). A new inline
  // key costs one B-tree descent; an overwrite two. When the key existed, the first
  // old_head.size() bytes of its old payload are copied to old_head (a shorter old
  // payload is kCorruption). `lmdb_key` receives the record's LMDB key (the buffer is
  // reused; pass nullptr if not needed). Throws LmdbMapFull when the map is full.
  Reserved reserve(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::size_t payload_size,
                   std::span<char> old_head, std::string* lmdb_key,
                   const LmdbErrorContext& context) const;
  // Inserts or overwrites. Throws LmdbMapFull when the map is full.
  void put(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view payload,
           const LmdbErrorContext& context) const;
  // Whether the key was there. The first old_head.size() bytes of the removed payload
  // are copied to old_head (a shorter payload is kCorruption).
  bool remove(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::span<char> old_head,
              const LmdbErrorContext& context) const;

  // Whether an LMDB key belongs to this keyspace.
  bool owns(const MDB_val& lmdb_key) const noexcept;
  // Decodes a stored record of this keyspace; nullopt if it is malformed.
  std::optional<Entry> decode(const MDB_val& lmdb_key, const MDB_val& data) const noexcept;
  // Whether `lmdb_key` is where `key` belongs (its inline form, or its group).
  bool placed_correctly(const MDB_val& lmdb_key, std::string_view key) const;

 private:
  std::string group_prefix(std::string_view key) const;
  std::string inline_key(std::string_view key) const;
  // tag + key in `buf` (or `key` itself when there is no tag).
  std::string_view inline_key_in(std::string_view key,
                                 char (&buf)[kMaxTagBytes + kMaxInlineKey]) const noexcept;

  std::string_view tag_;
  KeyHashFn hash_;
};

}  // namespace kvdex::detail

#endif  // KVDEX_SRC_LMDB_KEY_CODEC_H_
