// The LMDB key codec: keys of any bytes and length round-trip through put, get, a
// cursor walk (decode) and remove, also when every key's hash collides; decode of
// arbitrary records says nullopt rather than misreading them.
#include <lmdb.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "lmdb/key_codec.h"

namespace {

using kvdex::detail::KeyCodec;

std::uint64_t colliding_hash(std::string_view) { return 42; }

MDB_env* environment() {
  static MDB_env* env = [] {
    char dir[] = "/tmp/kvdex-fuzz-key-codec-XXXXXX";
    if (mkdtemp(dir) == nullptr) std::abort();
    MDB_env* e = nullptr;
    if (mdb_env_create(&e) != 0 || mdb_env_set_mapsize(e, 256 << 20) != 0 ||
        mdb_env_open(e, dir, MDB_NOSYNC, 0644) != 0)
      std::abort();
    return e;
  }();
  return env;
}

void round_trip(MDB_txn* txn, MDB_dbi dbi, const KeyCodec& codec, std::string_view key,
                std::string_view payload) {
  const kvdex::detail::LmdbErrorContext context{"fuzz", {}, false};
  codec.put(txn, dbi, key, payload, context);
  // A neighbour sharing the key's prefix, so groups hold more than one key.
  const std::string other = std::string(key) + "x";
  codec.put(txn, dbi, other, "other", context);
  const auto got = codec.get(txn, dbi, key, context);
  if (!got || *got != payload) std::abort();
  int found = 0;
  {
    kvdex::detail::LmdbCursor cursor(txn, dbi, context);
    MDB_val k;
    MDB_val d;
    for (int rc = mdb_cursor_get(cursor.get(), &k, &d, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cursor.get(), &k, &d, MDB_NEXT)) {
      const auto entry = codec.decode(k, d);
      if (!entry || !codec.placed_correctly(k, entry->key) || k.mv_size > 511) std::abort();
      if (entry->key == key && entry->payload == payload) ++found;
    }
  }
  if (found != 1) std::abort();
  char head[1];
  if (!codec.remove(txn, dbi, key, std::span<char>(head, 0), context)) std::abort();
  if (codec.get(txn, dbi, key, context)) std::abort();
  const auto neighbour = codec.get(txn, dbi, other, context);
  if (!neighbour || *neighbour != "other") std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  // The first byte splits the rest into key and payload; long keys come from
  // repeating the key so that the hashed form is reached.
  if (input.empty()) return 0;
  const std::size_t split = std::min<std::size_t>(input[0] & 0x3f, input.size() - 1);
  std::string key(input.substr(1, split));
  if (input[0] & 0x40) {
    while (!key.empty() && key.size() < kvdex::detail::kMaxInlineKey + 40) key += key;
  }
  const std::string_view payload = input.substr(1 + split);

  MDB_txn* txn = nullptr;
  if (mdb_txn_begin(environment(), nullptr, 0, &txn) != 0) std::abort();
  MDB_dbi dbi = 0;
  if (mdb_dbi_open(txn, nullptr, 0, &dbi) != 0) std::abort();
  const KeyCodec plain;
  const KeyCodec colliding({}, &colliding_hash);
  // Format 4 keys a collection's records by its 8-byte id (docs/lmdb.md).
  static const std::string collection_id("\0\0\0\0\0\0\1\x07", 8);
  const KeyCodec tagged(collection_id);
  const KeyCodec& codec = (input[0] & 0x80) ? colliding : (input.size() & 1) ? tagged : plain;
  round_trip(txn, dbi, codec, key, payload);

  // Arbitrary bytes as a stored record: decode must not misread past them.
  MDB_val k{split, const_cast<char*>(input.data() + 1)};
  MDB_val d{payload.size(), const_cast<char*>(payload.data())};
  (void)plain.decode(k, d);
  mdb_txn_abort(txn);  // nothing is kept between inputs
  return 0;
}
