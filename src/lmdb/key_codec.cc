#include "lmdb/key_codec.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace kvdex::detail {
namespace {

bool in_group(const MDB_val& k, std::string_view prefix) noexcept {
  return k.mv_size == prefix.size() + kKeyCounterBytes &&
         std::memcmp(k.mv_data, prefix.data(), prefix.size()) == 0;
}

unsigned group_counter(const MDB_val& k) noexcept {
  const auto* p = static_cast<const unsigned char*>(k.mv_data) + k.mv_size - kKeyCounterBytes;
  return (unsigned{p[0]} << 8) | p[1];
}

// Walks the group of `prefix`; fn(key, data) returns true to stop. Returns whether
// fn stopped the walk.
template <class Fn>
bool walk_group(MDB_cursor* cursor, std::string_view prefix, const LmdbErrorContext& context,
                Fn&& fn) {
  MDB_val k = as_val(prefix);
  MDB_val d;
  int rc = mdb_cursor_get(cursor, &k, &d, MDB_SET_RANGE);
  while (rc == MDB_SUCCESS && in_group(k, prefix)) {
    if (fn(k, d)) return true;
    rc = mdb_cursor_get(cursor, &k, &d, MDB_NEXT);
  }
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) throw_lmdb_error(rc, "read long-key group", context);
  return false;
}

}  // namespace

LmdbCursor::LmdbCursor(MDB_txn* txn, MDB_dbi dbi, const LmdbErrorContext& context) {
  const int rc = mdb_cursor_open(txn, dbi, &cursor_);
  if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "open cursor", context);
}

std::uint64_t fnv1a64(std::string_view bytes) noexcept {
  std::uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::string KeyCodec::inline_key(std::string_view key) const {
  std::string out;
  out.reserve(tag_.size() + key.size());
  out.append(tag_).append(key);
  return out;
}

std::string_view KeyCodec::inline_key_in(std::string_view key,
                                         char (&buf)[kMaxTagBytes + kMaxInlineKey]) const noexcept {
  if (tag_.empty()) return key;
  std::memcpy(buf, tag_.data(), tag_.size());
  std::memcpy(buf + tag_.size(), key.data(), key.size());
  return {buf, tag_.size() + key.size()};
}

std::string KeyCodec::group_prefix(std::string_view key) const {
  std::string out;
  out.reserve(tag_.size() + kMaxInlineKey + kKeyHashBytes);
  out.append(tag_);
  const std::string_view head = key.substr(0, std::min(key.size(), kMaxInlineKey));
  out.append(head);
  out.append(kMaxInlineKey - head.size(), '\0');
  const std::uint64_t h = hash_(key);
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((h >> shift) & 0xff));
  return out;
}

bool KeyCodec::owns(const MDB_val& lmdb_key) const noexcept {
  return lmdb_key.mv_size >= tag_.size() && as_view(lmdb_key).substr(0, tag_.size()) == tag_;
}

std::optional<KeyCodec::Entry> KeyCodec::decode(const MDB_val& lmdb_key,
                                                const MDB_val& data) const noexcept {
  if (!owns(lmdb_key)) return std::nullopt;
  const std::string_view rest = as_view(lmdb_key).substr(tag_.size());
  if (is_inline(rest)) return Entry{rest, as_view(data)};
  if (rest.size() != kHashedKeySuffix || data.mv_size < 4) return std::nullopt;
  const auto* p = static_cast<const unsigned char*>(data.mv_data);
  const std::size_t key_size = std::size_t{p[0]} | (std::size_t{p[1]} << 8) |
                               (std::size_t{p[2]} << 16) | (std::size_t{p[3]} << 24);
  if (key_size > data.mv_size - 4) return std::nullopt;
  const std::string_view record = as_view(data);
  return Entry{record.substr(4, key_size), record.substr(4 + key_size)};
}

bool KeyCodec::placed_correctly(const MDB_val& lmdb_key, std::string_view key) const {
  if (is_inline(key)) return as_view(lmdb_key) == inline_key(key);
  return in_group(lmdb_key, group_prefix(key));
}

std::optional<std::string_view> KeyCodec::get(MDB_txn* txn, MDB_dbi dbi, std::string_view key,
                                              const LmdbErrorContext& context) const {
  if (is_inline(key)) {
    char buf[kMaxTagBytes + kMaxInlineKey];
    MDB_val k = as_val(inline_key_in(key, buf));
    MDB_val d;
    const int rc = mdb_get(txn, dbi, &k, &d);
    if (rc == MDB_NOTFOUND) return std::nullopt;
    if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "get", context);
    return as_view(d);
  }
  const std::string prefix = group_prefix(key);
  LmdbCursor cursor(txn, dbi, context);
  std::optional<std::string_view> found;
  walk_group(cursor.get(), prefix, context, [&](const MDB_val& k, const MDB_val& d) {
    const std::optional<Entry> entry = decode(k, d);
    if (!entry) throw_lmdb_corruption("malformed long-key record", context);
    if (entry->key != key) return false;
    found = entry->payload;
    return true;
  });
  return found;
}

namespace {

// Copies the head of a payload that is being replaced or removed.
void copy_head(std::string_view payload, std::span<char> head, const LmdbErrorContext& context) {
  if (payload.size() < head.size()) throw_lmdb_corruption("record too short", context);
  if (!head.empty()) std::memcpy(head.data(), payload.data(), head.size());
}

}  // namespace

KeyCodec::Reserved KeyCodec::reserve(MDB_txn* txn, MDB_dbi dbi, std::string_view key,
                                     std::size_t payload_size, std::span<char> old_head,
                                     std::string* lmdb_key, const LmdbErrorContext& context) const {
  if (is_inline(key)) {
    char buf[kMaxTagBytes + kMaxInlineKey];
    const std::string_view stored = inline_key_in(key, buf);
    if (lmdb_key != nullptr) lmdb_key->assign(stored);
    MDB_val k = as_val(stored);
    MDB_val d{payload_size, nullptr};
    // New keys (the common case of put_all) cost one descent: insert-if-absent.
    int rc = mdb_put(txn, dbi, &k, &d, MDB_NOOVERWRITE | MDB_RESERVE);
    if (rc == MDB_SUCCESS) return Reserved{static_cast<char*>(d.mv_data), false};
    if (rc != MDB_KEYEXIST) throw_lmdb_error(rc, "put", context);
    copy_head(as_view(d), old_head, context);  // d is the existing record
    d = MDB_val{payload_size, nullptr};
    rc = mdb_put(txn, dbi, &k, &d, MDB_RESERVE);
    if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "put", context);
    return Reserved{static_cast<char*>(d.mv_data), true};
  }
  if (key.size() > 0xffffffffULL) {
    throw Error(ErrorCode::kInvalidArgument,
                lmdb_error_subject(context) + ": key longer than 4 GiB");
  }
  const std::string prefix = group_prefix(key);
  std::string target;
  bool exists = false;
  {
    std::vector<unsigned> used;
    LmdbCursor cursor(txn, dbi, context);
    exists = walk_group(cursor.get(), prefix, context, [&](const MDB_val& k, const MDB_val& d) {
      const std::optional<Entry> entry = decode(k, d);
      if (!entry) throw_lmdb_corruption("malformed long-key record", context);
      if (entry->key == key) {
        target.assign(as_view(k));
        copy_head(entry->payload, old_head, context);
        return true;
      }
      used.push_back(group_counter(k));
      return false;
    });
    if (!exists) {
      // Counters are assigned upwards; after a wrap-around, the first free one.
      unsigned counter = 0;
      if (!used.empty()) {
        std::sort(used.begin(), used.end());
        counter = used.back() + 1;
        if (counter > 0xffff) {
          counter = 0;
          while (counter < used.size() && used[counter] == counter) ++counter;
          if (counter > 0xffff) {
            throw Error(ErrorCode::kInvalidArgument,
                        lmdb_error_subject(context) + ": 65536 long keys share one hash group");
          }
        }
      }
      target = prefix;
      target.push_back(static_cast<char>(counter >> 8));
      target.push_back(static_cast<char>(counter & 0xff));
    }
  }  // the cursor is closed before the tree changes
  if (lmdb_key != nullptr) lmdb_key->assign(target);
  MDB_val k = as_val(target);
  MDB_val d{4 + key.size() + payload_size, nullptr};
  const int rc = mdb_put(txn, dbi, &k, &d, MDB_RESERVE);
  if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "put", context);
  auto* out = static_cast<unsigned char*>(d.mv_data);
  const auto n = static_cast<std::uint32_t>(key.size());
  out[0] = static_cast<unsigned char>(n & 0xff);
  out[1] = static_cast<unsigned char>((n >> 8) & 0xff);
  out[2] = static_cast<unsigned char>((n >> 16) & 0xff);
  out[3] = static_cast<unsigned char>((n >> 24) & 0xff);
  if (!key.empty()) std::memcpy(out + 4, key.data(), key.size());
  return Reserved{reinterpret_cast<char*>(out + 4 + key.size()), exists};
}

void KeyCodec::put(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view payload,
                   const LmdbErrorContext& context) const {
  const Reserved r = reserve(txn, dbi, key, payload.size(), {}, nullptr, context);
  if (!payload.empty()) std::memcpy(r.payload, payload.data(), payload.size());
}

bool KeyCodec::remove(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::span<char> old_head,
                      const LmdbErrorContext& context) const {
  LmdbCursor cursor(txn, dbi, context);
  if (is_inline(key)) {
    char buf[kMaxTagBytes + kMaxInlineKey];
    MDB_val k = as_val(inline_key_in(key, buf));
    MDB_val d;
    int rc = mdb_cursor_get(cursor.get(), &k, &d, MDB_SET_KEY);
    if (rc == MDB_NOTFOUND) return false;
    if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "delete", context);
    copy_head(as_view(d), old_head, context);
    rc = mdb_cursor_del(cursor.get(), 0);
    if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "delete", context);
    return true;
  }
  const std::string prefix = group_prefix(key);
  return walk_group(cursor.get(), prefix, context, [&](const MDB_val& k, const MDB_val& d) {
    const std::optional<Entry> entry = decode(k, d);
    if (!entry) throw_lmdb_corruption("malformed long-key record", context);
    if (entry->key != key) return false;
    copy_head(entry->payload, old_head, context);
    const int rc = mdb_cursor_del(cursor.get(), 0);
    if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "delete", context);
    return true;
  });
}

}  // namespace kvdex::detail
