#include "kvdex/insertion_ordered_map.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

namespace kvdex {
namespace {

std::vector<std::string> keys_of(const InsertionOrderedMap<int>& m) {
  std::vector<std::string> keys;
  for (const auto& [k, v] : m) keys.push_back(k);
  return keys;
}

TEST(InsertionOrderedMap, BehavesLikeAPythonDict) {
  InsertionOrderedMap<int> m;
  EXPECT_TRUE(m.insert_or_assign("b", 1));
  EXPECT_TRUE(m.insert_or_assign("a", 2));
  EXPECT_TRUE(m.insert_or_assign("c", 3));
  EXPECT_FALSE(m.insert_or_assign("a", 20));  // overwrite keeps the position
  EXPECT_EQ(keys_of(m), (std::vector<std::string>{"b", "a", "c"}));
  EXPECT_EQ(*m.get("a"), 20);
  EXPECT_EQ(m.erase("b"), 1u);
  EXPECT_EQ(m.erase("b"), 0u);
  EXPECT_TRUE(m.insert_or_assign("b", 4));  // re-inserted: at the end
  EXPECT_EQ(keys_of(m), (std::vector<std::string>{"a", "c", "b"}));
  EXPECT_EQ(m.size(), 3u);
  EXPECT_EQ(m.get("zzz"), nullptr);
  EXPECT_FALSE(m.contains(""));
  m.insert_or_assign("", 5);
  EXPECT_TRUE(m.contains(""));
  EXPECT_EQ(keys_of(m).back(), "");
}

TEST(InsertionOrderedMap, MatchesAReferenceModelUnderRandomOperations) {
  // The model: a std::map for membership plus a vector for order, as Python's dict.
  InsertionOrderedMap<int> m;
  std::map<std::string, int> values;
  std::vector<std::string> order;
  std::mt19937 rng(7);
  for (int step = 0; step < 20000; ++step) {
    const std::string key = "k" + std::to_string(rng() % 500);
    if (rng() % 3 == 0) {
      const bool present = values.erase(key) != 0;
      if (present) order.erase(std::find(order.begin(), order.end(), key));
      EXPECT_EQ(m.erase(key), present ? 1u : 0u);
    } else {
      const int v = static_cast<int>(rng());
      if (values.count(key) == 0) order.push_back(key);
      values[key] = v;
      m.insert_or_assign(key, v);
    }
    if (step % 1000 == 0) {
      ASSERT_EQ(keys_of(m), order);
      for (const auto& [k, v] : values) ASSERT_EQ(*m.get(k), v);
    }
  }
  EXPECT_EQ(m.size(), values.size());
  EXPECT_EQ(keys_of(m), order);
}

TEST(InsertionOrderedMap, HandlesManyKeysAndClear) {
  InsertionOrderedMap<std::string> m;
  m.reserve(100000);
  for (int i = 0; i < 100000; ++i) m.insert_or_assign(std::to_string(i), std::to_string(i * 2));
  EXPECT_EQ(m.size(), 100000u);
  EXPECT_EQ(*m.get("77777"), "155554");
  for (int i = 0; i < 100000; i += 2) m.erase(std::to_string(i));
  EXPECT_EQ(m.size(), 50000u);
  EXPECT_EQ(m.begin()->first, "1");
  m.clear();
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(m.begin(), m.end());
}

}  // namespace
}  // namespace kvdex
