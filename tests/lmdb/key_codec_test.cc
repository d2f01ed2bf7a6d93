// The long-key scheme (src/lmdb/key_codec.h) on a raw LMDB environment, with a hash
// that makes every long key collide, so the collision groups are really exercised.
#include "lmdb/key_codec.h"

#include <gtest/gtest.h>
#include <lmdb.h>

#include <cstring>
#include <map>
#include <string>

#include "test_util.h"

namespace kvdex::testing {
namespace {

using detail::KeyCodec;
using detail::kMaxInlineKey;

std::uint64_t colliding_hash(std::string_view) { return 42; }

class KeyCodecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(mdb_env_create(&env_), 0);
    ASSERT_EQ(mdb_env_set_mapsize(env_, 64 << 20), 0);
    ASSERT_EQ(mdb_env_open(env_, dir_.path().c_str(), MDB_NOSYNC, 0644), 0);
    ASSERT_EQ(mdb_txn_begin(env_, nullptr, 0, &txn_), 0);
    ASSERT_EQ(mdb_dbi_open(txn_, nullptr, 0, &dbi_), 0);
  }
  void TearDown() override {
    if (txn_ != nullptr) mdb_txn_abort(txn_);
    mdb_env_close(env_);
  }

  // Every record, decoded, as key -> payload; checks each is placed correctly.
  std::map<std::string, std::string> dump(const KeyCodec& codec) {
    std::map<std::string, std::string> out;
    detail::LmdbCursor cursor(txn_, dbi_, context_);
    MDB_val k;
    MDB_val d;
    for (int rc = mdb_cursor_get(cursor.get(), &k, &d, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cursor.get(), &k, &d, MDB_NEXT)) {
      auto entry = codec.decode(k, d);
      EXPECT_TRUE(entry.has_value());
      if (!entry) continue;
      EXPECT_TRUE(codec.placed_correctly(k, entry->key));
      EXPECT_LE(k.mv_size, 511u);
      out.emplace(std::string(entry->key), std::string(entry->payload));
    }
    return out;
  }

  TempDir dir_;
  MDB_env* env_ = nullptr;
  MDB_txn* txn_ = nullptr;
  MDB_dbi dbi_ = 0;
  detail::LmdbErrorContext context_{"test", {}, false};
};

TEST_F(KeyCodecTest, InlineAndHashedKeysRoundTrip) {
  const KeyCodec codec;
  const std::vector<std::string> keys = {"a",
                                         std::string(kMaxInlineKey, 'x'),
                                         std::string(kMaxInlineKey + 1, 'x'),
                                         "",
                                         std::string(511, 'y'),
                                         std::string(100000, 'z'),
                                         std::string("\0\0", 2)};
  for (std::size_t i = 0; i < keys.size(); ++i)
    codec.put(txn_, dbi_, keys[i], "v" + std::to_string(i), context_);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(codec.get(txn_, dbi_, keys[i], context_), "v" + std::to_string(i)) << "key #" << i;
  }
  EXPECT_EQ(dump(codec).size(), keys.size());
  EXPECT_FALSE(codec.get(txn_, dbi_, std::string(kMaxInlineKey + 1, 'q'), context_).has_value());
  EXPECT_TRUE(codec.remove(txn_, dbi_, "", {}, context_));
  EXPECT_FALSE(codec.remove(txn_, dbi_, "", {}, context_));
  EXPECT_FALSE(codec.get(txn_, dbi_, "", context_).has_value());
  EXPECT_EQ(codec.get(txn_, dbi_, std::string(100000, 'z'), context_), "v5");
}

TEST_F(KeyCodecTest, CollidingLongKeysShareAGroupAndStayDistinct) {
  const KeyCodec codec({}, &colliding_hash);
  const std::string prefix(kMaxInlineKey, 'p');
  std::map<std::string, std::string> expected;
  for (int i = 0; i < 50; ++i) {
    const std::string key = prefix + std::to_string(i);
    codec.put(txn_, dbi_, key, "v" + std::to_string(i), context_);
    expected[key] = "v" + std::to_string(i);
  }
  EXPECT_EQ(dump(codec), expected);
  // Remove from the middle of the group; the rest stays reachable.
  for (int i : {0, 17, 25, 49}) {
    EXPECT_TRUE(codec.remove(txn_, dbi_, prefix + std::to_string(i), {}, context_));
    expected.erase(prefix + std::to_string(i));
  }
  for (const auto& [key, value] : expected) EXPECT_EQ(codec.get(txn_, dbi_, key, context_), value);
  // Overwrite in place, re-insert into a gap.
  codec.put(txn_, dbi_, prefix + "30", "new", context_);
  codec.put(txn_, dbi_, prefix + "17", "back", context_);
  expected[prefix + "30"] = "new";
  expected[prefix + "17"] = "back";
  EXPECT_EQ(dump(codec), expected);
  // The empty key falls in the zero-padded group of its own prefix.
  codec.put(txn_, dbi_, "", "empty", context_);
  codec.put(txn_, dbi_, std::string(kMaxInlineKey + 5, '\0'), "zeros", context_);
  EXPECT_EQ(codec.get(txn_, dbi_, "", context_), "empty");
  EXPECT_EQ(codec.get(txn_, dbi_, std::string(kMaxInlineKey + 5, '\0'), context_), "zeros");
}

// reserve() reports whether the key existed, hands back the old payload's head and
// the LMDB key, for inline and hashed (colliding) keys alike; remove() hands back the
// removed payload's head.
TEST_F(KeyCodecTest, ReserveAndRemoveReturnTheOldHead) {
  const KeyCodec codec({}, &colliding_hash);
  for (const std::string& key : {std::string("short"), std::string(kMaxInlineKey + 9, 'r') + "1",
                                 std::string(kMaxInlineKey + 9, 'r') + "2", std::string()}) {
    SCOPED_TRACE(key.size());
    char head[4] = {};
    std::string lmdb_key;
    KeyCodec::Reserved r = codec.reserve(txn_, dbi_, key, 6, head, &lmdb_key, context_);
    EXPECT_FALSE(r.existed);
    std::memcpy(r.payload, "AAAAaa", 6);
    EXPECT_TRUE(codec.placed_correctly(detail::as_val(lmdb_key), key));
    const std::string first_lmdb_key = lmdb_key;
    r = codec.reserve(txn_, dbi_, key, 5, head, &lmdb_key, context_);
    EXPECT_TRUE(r.existed);
    EXPECT_EQ(std::string(head, 4), "AAAA");
    EXPECT_EQ(lmdb_key, first_lmdb_key) << "an overwrite keeps the record where it was";
    std::memcpy(r.payload, "BBBBb", 5);
    EXPECT_EQ(codec.get(txn_, dbi_, key, context_), "BBBBb");
    char removed[4] = {};
    EXPECT_TRUE(codec.remove(txn_, dbi_, key, removed, context_));
    EXPECT_EQ(std::string(removed, 4), "BBBB");
    EXPECT_FALSE(codec.remove(txn_, dbi_, key, removed, context_));
  }
  // A payload shorter than the head asked for is corruption, and changes nothing.
  codec.put(txn_, dbi_, "tiny", "x", context_);
  char head[8];
  KVDEX_EXPECT_ERROR(codec.reserve(txn_, dbi_, "tiny", 9, head, nullptr, context_),
                     ErrorCode::kCorruption);
  KVDEX_EXPECT_ERROR(codec.remove(txn_, dbi_, "tiny", head, context_), ErrorCode::kCorruption);
  EXPECT_EQ(codec.get(txn_, dbi_, "tiny", context_), "x");
}

TEST_F(KeyCodecTest, TaggedKeyspacesDoNotMix) {
  const KeyCodec names("n");
  const KeyCodec other("o");
  names.put(txn_, dbi_, "same", "1", context_);
  other.put(txn_, dbi_, "same", "2", context_);
  names.put(txn_, dbi_, std::string(2000, 'l'), "3", context_);
  EXPECT_EQ(names.get(txn_, dbi_, "same", context_), "1");
  EXPECT_EQ(other.get(txn_, dbi_, "same", context_), "2");
  EXPECT_EQ(names.get(txn_, dbi_, std::string(2000, 'l'), context_), "3");
  EXPECT_FALSE(other.get(txn_, dbi_, std::string(2000, 'l'), context_).has_value());
}

TEST_F(KeyCodecTest, MalformedRecordsDoNotDecode) {
  const KeyCodec codec;
  std::string hashed_key(detail::kHashedKeySuffix, 'h');
  MDB_val k = detail::as_val(hashed_key);
  const std::string short_record = "ab";
  MDB_val d = detail::as_val(short_record);
  EXPECT_FALSE(codec.decode(k, d).has_value());
  const std::string lying_length = std::string("\xff\x00\x00\x00", 4) + "abc";
  d = detail::as_val(lying_length);
  EXPECT_FALSE(codec.decode(k, d).has_value());
  const std::string odd_size(kMaxInlineKey + 3, 'k');
  k = detail::as_val(odd_size);
  EXPECT_FALSE(codec.decode(k, d).has_value());
}

TEST(KeyHash, IsFnv1a64) {
  EXPECT_EQ(detail::fnv1a64(""), 14695981039346656037ULL);
  EXPECT_EQ(detail::fnv1a64("a"), 0xaf63dc4c8601ec8cULL);
}

}  // namespace
}  // namespace kvdex::testing
