// Key slots: CRC16-XMODEM and hash tags, against the specification's examples here and
// against a live cluster's CLUSTER KEYSLOT in cluster_live_test.cc.
#include "redis/hash_slot.h"

#include <gtest/gtest.h>

#include <string>

namespace kvdex::redis {
namespace {

TEST(HashSlot, Crc16IsXmodem) {
  // The check value of CRC-16/XMODEM, quoted in Redis's crc16.c.
  EXPECT_EQ(crc16_xmodem("123456789"), 0x31C3);
  EXPECT_EQ(crc16_xmodem(""), 0);
  EXPECT_EQ(crc16_xmodem(std::string("\0", 1)), 0);
  EXPECT_EQ(crc16_xmodem("A"), 0x58E5);
}

TEST(HashSlot, KnownSlots) {
  // Values CLUSTER KEYSLOT answers (documented in Redis's CLUSTER KEYSLOT page).
  EXPECT_EQ(key_hash_slot("somekey"), 11058);
  EXPECT_EQ(key_hash_slot("foo{hash_tag}"), 2515);
  EXPECT_EQ(key_hash_slot("foo"), 12182);
  EXPECT_EQ(key_hash_slot(""), 0);
}

TEST(HashSlot, HashTagRulesOfTheSpecification) {
  // Only the part between the first '{' and the first '}' after it is hashed.
  EXPECT_EQ(hash_tag_of("{user1000}.following"), "user1000");
  EXPECT_EQ(key_hash_slot("{user1000}.following"), key_hash_slot("{user1000}.followers"));
  EXPECT_EQ(hash_tag_of("foo{{bar}}zap"), "{bar");
  EXPECT_EQ(hash_tag_of("foo{bar}{zap}"), "bar");
  // An empty tag "{}" means the whole key is hashed, even if a later tag follows.
  EXPECT_EQ(hash_tag_of("foo{}{bar}"), "foo{}{bar}");
  EXPECT_EQ(hash_tag_of("{}"), "{}");
  // No closing brace after the first '{': the whole key.
  EXPECT_EQ(hash_tag_of("foo{bar"), "foo{bar");
  EXPECT_EQ(hash_tag_of("}foo{"), "}foo{");
  // A '}' before the first '{' does not count.
  EXPECT_EQ(hash_tag_of("}a{b}"), "b");
  EXPECT_EQ(hash_tag_of("{a}"), "a");
  EXPECT_EQ(key_hash_slot("{a}"), key_hash_slot("a"));
  EXPECT_EQ(key_hash_slot("x{foo}y"), key_hash_slot("foo"));
}

TEST(HashSlot, SlotsStayInRangeForBinaryKeys) {
  std::string key;
  for (int i = 0; i < 4096; ++i) {
    key.push_back(static_cast<char>(i * 37 + 11));
    const int slot = key_hash_slot(key);
    ASSERT_GE(slot, 0);
    ASSERT_LT(slot, kClusterSlotCount);
  }
}

}  // namespace
}  // namespace kvdex::redis
