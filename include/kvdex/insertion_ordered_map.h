// InsertionOrderedMap — a string-keyed hash map that iterates in insertion order,
// with the semantics of Python's dict.
//
// Layout (the shape of CPython's compact dict): entries live in a vector in the
// order they were first inserted; an open-addressing table (linear probing) of
// entry indexes, each with 32 bits of the key's hash, finds them. Overwriting a key keeps its
// position; erasing leaves a hole that is squeezed out once holes outnumber live entries, so
// re-inserting an erased key puts it at the end, as in Python.
//
// Lookups take std::string_view, so a probe never allocates.
//
// Thread safety: none (like std::unordered_map); kvdex stores guard it with a lock.
// References and iterators are invalidated by any insertion or erase.
#ifndef KVDEX_INSERTION_ORDERED_MAP_H_
#define KVDEX_INSERTION_ORDERED_MAP_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kvdex/error.h"

namespace kvdex {

template <class V>
class InsertionOrderedMap {
  struct Entry {
    std::pair<std::string, V> kv;
    std::size_t hash;
    bool live;
  };

 public:
  using key_type = std::string;
  using mapped_type = V;
  using value_type = std::pair<std::string, V>;
  using size_type = std::size_t;

  class const_iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = InsertionOrderedMap::value_type;
    using difference_type = std::ptrdiff_t;
    using pointer = const value_type*;
    using reference = const value_type&;

    const_iterator() = default;
    reference operator*() const { return (*entries_)[pos_].kv; }
    pointer operator->() const { return &(*entries_)[pos_].kv; }
    const_iterator& operator++() {
      ++pos_;
      skip_dead();
      return *this;
    }
    const_iterator operator++(int) {
      const_iterator old = *this;
      ++*this;
      return old;
    }
    friend bool operator==(const const_iterator& a, const const_iterator& b) {
      return a.pos_ == b.pos_;
    }

   private:
    friend class InsertionOrderedMap;
    const_iterator(const std::vector<Entry>* entries, std::size_t pos)
        : entries_(entries), pos_(pos) {
      skip_dead();
    }
    void skip_dead() {
      while (pos_ < entries_->size() && !(*entries_)[pos_].live) ++pos_;
    }
    const std::vector<Entry>* entries_ = nullptr;
    std::size_t pos_ = 0;
  };

  InsertionOrderedMap() = default;

  std::size_t size() const noexcept { return live_; }
  bool empty() const noexcept { return live_ == 0; }

  const_iterator begin() const { return const_iterator(&entries_, 0); }
  const_iterator end() const { return const_iterator(&entries_, entries_.size()); }

  const_iterator find(std::string_view key) const {
    const std::size_t slot = find_slot(key, hash_of(key));
    return slot == kNoSlot ? end() : const_iterator(&entries_, index_at(slot));
  }

  bool contains(std::string_view key) const { return find(key) != end(); }

  // Returns a pointer to the value, or nullptr.
  const V* get(std::string_view key) const {
    auto it = find(key);
    return it == end() ? nullptr : &it->second;
  }

  // Inserts at the end, or overwrites in place. Returns true if the key was new.
  template <class Value>
  bool insert_or_assign(std::string_view key, Value&& value) {
    const std::size_t hash = hash_of(key);
    if (const std::size_t slot = find_slot(key, hash); slot != kNoSlot) {
      entries_[index_at(slot)].kv.second = std::forward<Value>(value);
      return false;
    }
    reserve_for_one_more();
    if (entries_.size() >= kMaxEntries) {
      throw Error(ErrorCode::kOutOfRange, "InsertionOrderedMap: more than 4 billion entries");
    }
    entries_.push_back(Entry{{std::string(key), V(std::forward<Value>(value))}, hash, true});
    place(hash, static_cast<std::uint32_t>(entries_.size() - 1));
    ++live_;
    return true;
  }

  // Returns the number of entries removed (0 or 1).
  std::size_t erase(std::string_view key) {
    if (table_.empty()) return 0;
    const std::size_t hash = hash_of(key);
    const std::size_t slot = find_slot(key, hash);
    if (slot == kNoSlot) return 0;
    Entry& entry = entries_[index_at(slot)];
    entry.live = false;
    entry.kv = value_type{};  // free the key and value now, not at the next compaction
    table_[slot] = kTombstone;
    --live_;
    ++tombstones_;
    if (tombstones_ > live_ && tombstones_ > 16) compact();
    return 1;
  }

  void reserve(std::size_t n) {
    entries_.reserve(n);
    if (n * 3 > table_.size() * 2) rebuild_table(n);
  }

  void clear() {
    entries_.clear();
    table_.clear();
    live_ = 0;
    tombstones_ = 0;
  }

 private:
  // A table slot holds the upper 32 bits of the key's hash (a tag, compared before
  // touching the entry, which is most likely a cache miss) and the entry's index.
  static constexpr std::uint64_t kEmpty = std::numeric_limits<std::uint64_t>::max();
  static constexpr std::uint64_t kTombstone = kEmpty - 1;
  static constexpr std::size_t kMaxEntries = 0xFFFFFFF0u;

  static std::uint64_t slot_value(std::size_t hash, std::uint32_t index) {
    return (static_cast<std::uint64_t>(hash >> 32) << 32) | index;
  }
  std::uint32_t index_at(std::size_t slot) const {
    return static_cast<std::uint32_t>(table_[slot]);
  }
  static constexpr std::size_t kNoSlot = std::numeric_limits<std::size_t>::max();

  static std::size_t hash_of(std::string_view key) { return std::hash<std::string_view>{}(key); }

  // The table slot holding `key`, or kNoSlot.
  std::size_t find_slot(std::string_view key, std::size_t hash) const {
    if (table_.empty()) return kNoSlot;
    const std::size_t mask = table_.size() - 1;
    const std::uint64_t tag = static_cast<std::uint64_t>(hash >> 32);
    for (std::size_t slot = hash & mask;; slot = (slot + 1) & mask) {
      const std::uint64_t value = table_[slot];
      if (value == kEmpty) return kNoSlot;
      if (value != kTombstone && (value >> 32) == tag) {
        const Entry& entry = entries_[static_cast<std::uint32_t>(value)];
        if (entry.hash == hash && entry.kv.first == key) return slot;
      }
    }
  }

  void place(std::size_t hash, std::uint32_t index) {
    const std::size_t mask = table_.size() - 1;
    std::size_t slot = hash & mask;
    while (table_[slot] != kEmpty && table_[slot] != kTombstone) slot = (slot + 1) & mask;
    table_[slot] = slot_value(hash, index);
  }

  // Keeps the table at most 2/3 full, counting tombstoned slots as full.
  void reserve_for_one_more() {
    if ((entries_.size() + 1) * 3 <= table_.size() * 2) return;
    if (tombstones_ > 0) {
      compact();
      if ((entries_.size() + 1) * 3 <= table_.size() * 2) return;
    }
    rebuild_table(std::max<std::size_t>(8, (live_ + 1) * 2));
  }

  void compact() {
    std::size_t out = 0;
    for (std::size_t in = 0; in < entries_.size(); ++in) {
      if (!entries_[in].live) continue;
      if (out != in) entries_[out] = std::move(entries_[in]);
      ++out;
    }
    entries_.resize(out);
    tombstones_ = 0;
    rebuild_table(std::max<std::size_t>(8, live_ * 2));
  }

  void rebuild_table(std::size_t capacity) {
    std::size_t size = 8;
    while (size * 2 < capacity * 3) size *= 2;
    table_.assign(size, kEmpty);
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      if (entries_[i].live) place(entries_[i].hash, static_cast<std::uint32_t>(i));
    }
  }

  std::vector<Entry> entries_;
  std::vector<std::uint64_t> table_;
  std::size_t live_ = 0;
  std::size_t tombstones_ = 0;
};

}  // namespace kvdex

#endif  // KVDEX_INSERTION_ORDERED_MAP_H_
