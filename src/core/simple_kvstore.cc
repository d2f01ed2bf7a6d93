#include "kvdex/simple_kvstore.h"

#include <simdjson.h>

#include <cstring>
#include <map>
#include <optional>

#include "core/json_codec.h"
#include "kvdex/error.h"

namespace kvdex {
namespace {

using Mapping = SimpleKVStore::Mapping;
using Collections = InsertionOrderedMap<std::unique_ptr<Mapping>>;

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

std::string quote_name(std::string_view s) { return json::quote_for_message(s); }

// The bytes of a persist file, followed by at least SIMDJSON_PADDING readable bytes.
struct PaddedText {
  std::shared_ptr<const void> owner;  // keeps `text` alive; values loaded may share it
  std::string_view text;
};

// The fast path. simdjson's stage 1 (SIMD, picked at run time for this CPU, UTF-8
// validated) finds every structural character; we walk them to slice each value's
// text out of the buffer without building anything. (Debian's simdjson compiles
// its On-Demand front end for the build's baseline target only, which on x86-64 is
// the scalar fallback kernel; stage 1 through the implementation interface keeps
// the runtime dispatch. See docs/design-notes.md.)
//
// load() returns false whenever anything is unusual; the exact path then either
// accepts the text as Python would or names the error precisely. Values that are
// already canonical keep pointing into the buffer.
class StructuralLoader {
 public:
  StructuralLoader(const PaddedText& buffer, std::string_view json, const std::uint32_t* index,
                   std::uint32_t count)
      : buffer_(buffer), json_(json), index_(index), count_(count), key_parser_(json) {}

  bool load(Collections& out) {
    if (!consume('{')) return false;
    if (!consume('}')) {
      do {
        std::string name;
        if (!read_key(name) || !consume('{')) return false;
        auto mapping = std::make_unique<Mapping>();
        if (!load_collection(*mapping)) return false;
        out.insert_or_assign(name, std::move(mapping));
      } while (consume(','));
      if (!consume('}')) return false;
    }
    return i_ == count_;  // nothing but whitespace after the top-level object
  }

 private:
  char at(std::uint32_t k) const { return k < count_ ? json_[index_[k]] : '\0'; }

  bool consume(char c) {
    if (at(i_) != c) return false;
    ++i_;
    return true;
  }

  // `"key":` at the current structural.
  bool read_key(std::string& key) {
    key_parser_.set_position(index_[i_]);
    try {
      key.assign(key_parser_.parse_member_name(scratch_));
    } catch (const detail::JsonSyntaxError&) {
      return false;
    }
    ++i_;
    return consume(':');
  }

  // The structural that closes the container whose contents start at structural
  // `from` (count_ if none does), and how many commas it holds directly.
  std::uint32_t find_close(std::uint32_t from, std::uint32_t& commas) const {
    commas = 0;
    int depth = 0;
    for (std::uint32_t k = from; k < count_; ++k) {
      const char c = json_[index_[k]];
      if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (--depth < 0) return k;
      } else if (c == ',' && depth == 0) {
        ++commas;
      }
    }
    return count_;
  }

  // The members of a collection, after its '{', through its '}'.
  bool load_collection(Mapping& mapping) {
    if (consume('}')) return true;
    // Counting the entries first (one pass over the collection's structurals, about
    // 1% of the load) lets the map be built at its final size: growing it re-places
    // every entry at each doubling, a cache miss each on a large collection.
    std::uint32_t commas = 0;
    find_close(i_, commas);
    mapping.reserve(std::size_t{commas} + 1);
    std::string key;
    do {
      if (!read_key(key) || !load_value(key, mapping)) return false;
    } while (consume(','));
    return consume('}');
  }

  // One value, which must be an object: its text runs to the structural that closes
  // its first brace.
  bool load_value(const std::string& key, Mapping& mapping) {
    if (at(i_) != '{') return false;
    const std::uint32_t first = i_;
    std::uint32_t commas = 0;
    const std::uint32_t close = find_close(first + 1, commas);
    if (close >= count_ || json_[index_[close]] != '}') return false;
    const std::string_view raw = json_.substr(index_[first], index_[close] + 1 - index_[first]);
    i_ = close + 1;
    if (detail::is_canonical_object(raw)) {
      mapping.insert_or_assign(key, EncodedValue::adopt_canonical(raw, buffer_.owner));
      return true;
    }
    std::string canonical;
    try {
      canonical = detail::canonicalize_object(raw);
    } catch (const detail::JsonSyntaxError&) {
      return false;
    }
    mapping.insert_or_assign(key, EncodedValue::adopt_canonical(canonical, nullptr));
    return true;
  }

  const PaddedText& buffer_;
  std::string_view json_;
  const std::uint32_t* index_;
  std::uint32_t count_;
  std::uint32_t i_ = 0;  // the next structural
  detail::JsonParser key_parser_;
  std::string scratch_;
};

bool load_with_simdjson(const PaddedText& buffer, std::size_t start, Collections& out) {
  const std::string_view text = buffer.text;
  const std::size_t length = text.size() - start;
  if (length == 0 || length >= 0xFFFFFF00u) return false;  // 32-bit structural offsets
  std::unique_ptr<simdjson::internal::dom_parser_implementation> stage1;
  if (simdjson::get_active_implementation()->create_dom_parser_implementation(
          length, simdjson::DEFAULT_MAX_DEPTH, stage1) != simdjson::SUCCESS) {
    return false;
  }
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(text.data() + start);
  if (stage1->stage1(bytes, length, simdjson::stage1_mode::regular) != simdjson::SUCCESS)
    return false;
  const std::string_view json(text.data() + start, length);
  return StructuralLoader(buffer, json, stage1->structural_indexes.get(),
                          stage1->n_structural_indexes)
      .load(out);
}

// The exact path: kvdex's own parser, with json.loads' acceptance and precise errors.
// Python first parses the whole file, then LlamaIndex uses the dict, where a later
// duplicate key replaces an earlier one. So a collection or value that is not an
// object is an error only if nothing later replaces it, and only once the whole file
// has parsed.
class ExactLoader {
 public:
  ExactLoader(std::string_view text, std::size_t start, std::string_view source)
      : text_(text), source_(source), parser_(text) {
    parser_.set_position(start);
  }

  void load(Collections& out) {
    try {
      if (parser_.peek() != '{') {
        if (parser_.at_end())
          throw corrupt(parser_.position(), "expecting value (the file is empty)");
        throw corrupt(parser_.position(), "expecting '{': a persist file holds one JSON object");
      }
      for_each_member([&](std::string name) { load_collection(std::move(name), out); });
      parser_.skip_whitespace();
      if (!parser_.at_end()) parser_.fail(parser_.position(), "extra data");
    } catch (const detail::JsonSyntaxError& e) {
      throw corrupt(e.offset, e.message);
    }
    throw_first_rejected();
  }

 private:
  struct Rejected {
    std::size_t offset;
    std::string message;
  };
  // What still stands rejected in one collection: the collection itself, or values.
  struct CollectionRejected {
    std::optional<Rejected> collection;
    std::map<std::string, Rejected> keys;
  };

  Error corrupt(std::size_t at, const std::string& what) const {
    return Error(ErrorCode::kCorruption,
                 std::string(source_) + ": " + what + " at " + detail::describe_offset(text_, at));
  }

  // Calls `member(name)` for each member of the object at the parser's position,
  // with the parser at the member's value.
  template <class Member>
  void for_each_member(const Member& member) {
    parser_.expect('{', "expecting '{'");
    if (parser_.peek() == '}') {
      parser_.set_position(parser_.position() + 1);
      return;
    }
    for (;;) {
      member(std::string(parser_.parse_member_name(scratch_)));
      if (parser_.peek() == '}') {
        parser_.set_position(parser_.position() + 1);
        return;
      }
      parser_.expect(',', "expecting ',' delimiter");
    }
  }

  // Skips a value that is not an object and returns where it started. `max_depth`:
  // what nesting its place in the file leaves (see kMaxJsonDepth).
  std::size_t skip_value(int max_depth) {
    const std::size_t at = parser_.position();
    parser_.set_max_depth(max_depth);
    detail::DiscardHandler discard;
    parser_.parse_value(discard);
    return at;
  }

  void load_collection(std::string name, Collections& out) {
    CollectionRejected& rejected = rejected_[name];
    rejected.keys.clear();
    if (parser_.peek() != '{') {
      const std::size_t at = skip_value(detail::kMaxJsonDepth - 1);
      rejected.collection =
          Rejected{at, "collection " + quote_name(name) + " is not a JSON object"};
      out.insert_or_assign(name, std::make_unique<Mapping>());  // holds the first position
      return;
    }
    rejected.collection.reset();
    auto mapping = std::make_unique<Mapping>();
    for_each_member([&](std::string key) { load_value(name, std::move(key), rejected, *mapping); });
    out.insert_or_assign(name, std::move(mapping));
  }

  void load_value(const std::string& name, std::string key, CollectionRejected& rejected,
                  Mapping& mapping) {
    if (parser_.peek() != '{') {
      const std::size_t at = skip_value(detail::kMaxValueDepth);
      rejected.keys[key] = Rejected{at, "value of key " + quote_name(key) + " in collection " +
                                            quote_name(name) + " is not a JSON object"};
      mapping.insert_or_assign(key, EncodedValue());  // holds the first position
      return;
    }
    rejected.keys.erase(key);
    parser_.set_max_depth(detail::kMaxValueDepth);
    mapping.insert_or_assign(
        key, EncodedValue::adopt_canonical(detail::parse_canonical_value(parser_), nullptr));
  }

  // The rejection earliest in the file, if any still stands.
  void throw_first_rejected() const {
    const Rejected* first = nullptr;
    auto consider = [&](const Rejected& r) {
      if (!first || r.offset < first->offset) first = &r;
    };
    for (const auto& [name, rejected] : rejected_) {
      if (rejected.collection) consider(*rejected.collection);
      for (const auto& [key, r] : rejected.keys) consider(r);
    }
    if (first) throw corrupt(first->offset, first->message);
  }

  std::string_view text_;
  std::string_view source_;
  detail::JsonParser parser_;
  std::string scratch_;
  std::map<std::string, CollectionRejected> rejected_;
};

void load_exactly(std::string_view text, std::size_t start, std::string_view source,
                  Collections& out) {
  ExactLoader(text, start, source).load(out);
}

class LoadedStore final : public SimpleKVStore {
 public:
  ~LoadedStore() override { wait_for_pending_operations(); }  // the most-derived class waits
  void adopt(Collections collections) { replace_contents(std::move(collections)); }
};

std::unique_ptr<SimpleKVStore> load(const PaddedText& buffer, std::string_view source) {
  const std::string_view text = buffer.text;
  const std::size_t start = text.starts_with(kUtf8Bom) ? kUtf8Bom.size() : 0;
  Collections collections;
  if (!load_with_simdjson(buffer, start, collections)) {
    collections.clear();
    load_exactly(text, start, source, collections);
  }
  auto store = std::make_unique<LoadedStore>();
  store->adopt(std::move(collections));
  return store;
}

}  // namespace

void write_persist_json(const StoreSnapshot& snapshot,
                        const std::function<void(std::string_view)>& sink) {
  constexpr std::size_t kChunk = 1 << 20;
  constexpr std::size_t kDirect = 1 << 16;  // larger values skip the buffer
  std::string buf;
  buf.reserve(kChunk + kDirect);
  auto flush = [&] {
    if (!buf.empty()) sink(buf);
    buf.clear();
  };
  buf.push_back('{');
  bool first_collection = true;
  for (const auto& [name, entries] : snapshot) {
    if (!first_collection) buf.append(", ");
    first_collection = false;
    detail::append_key(buf, name);
    buf.append(": {");
    bool first_entry = true;
    for (const auto& [key, value] : entries) {
      if (!first_entry) buf.append(", ");
      first_entry = false;
      detail::append_key(buf, key);
      buf.append(": ");
      if (value.size() >= kDirect) {
        flush();
        sink(value.text());
      } else {
        buf.append(value.text());
        if (buf.size() >= kChunk) flush();
      }
    }
    buf.push_back('}');
  }
  buf.push_back('}');
  flush();
}

void SimpleKVStore::persist(const std::string& persist_path, FileSystem* fs) {
  const StoreSnapshot data = snapshot();
  write_file_atomically(fs ? *fs : local_filesystem(), persist_path, [&](WritableFile& file) {
    write_persist_json(data, [&](std::string_view chunk) { file.append(chunk); });
  });
}

std::unique_ptr<SimpleKVStore> SimpleKVStore::from_persist_path(const std::string& persist_path,
                                                                FileSystem* fs) {
  FileBytes file = read_whole_file_shared(fs ? *fs : local_filesystem(), persist_path,
                                          simdjson::SIMDJSON_PADDING);
  const std::string_view text(file.data.get(), file.size);
  return load(PaddedText{std::move(file.data), text}, persist_path);
}

std::string SimpleKVStore::to_json_text() const {
  std::string out;
  write_persist_json(snapshot(), [&](std::string_view chunk) { out.append(chunk); });
  return out;
}

std::unique_ptr<SimpleKVStore> SimpleKVStore::from_json_text(std::string text,
                                                             std::string_view source_name) {
  text.reserve(text.size() + simdjson::SIMDJSON_PADDING);
  auto owner = std::make_shared<const std::string>(std::move(text));
  const std::string_view view = *owner;
  return load(PaddedText{std::move(owner), view}, source_name);
}

Value SimpleKVStore::to_dict() const {
  Value out = Value::object();
  auto& collections = out.get_ref<Value::object_t&>();
  for (const auto& [name, entries] : snapshot()) {
    Value collection = Value::object();
    auto& members = collection.get_ref<Value::object_t&>();
    members.Container::reserve(entries.size());
    for (const auto& [key, value] : entries) members.Container::emplace_back(key, value.decode());
    collections.Container::emplace_back(name, std::move(collection));
  }
  return out;
}

std::unique_ptr<SimpleKVStore> SimpleKVStore::from_dict(const Value& data) {
  if (!data.is_object()) {
    throw Error(
        ErrorCode::kInvalidArgument,
        std::string("from_dict: expected an object of collections, got ") + data.type_name());
  }
  Collections collections;
  for (auto it = data.begin(); it != data.end(); ++it) {
    if (!it.value().is_object()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "from_dict: collection " + quote_name(it.key()) + " is not an object");
    }
    auto mapping = std::make_unique<Mapping>();
    for (auto entry = it.value().begin(); entry != it.value().end(); ++entry) {
      if (!entry.value().is_object()) {
        throw Error(ErrorCode::kInvalidArgument, "from_dict: value of key " +
                                                     quote_name(entry.key()) + " in collection " +
                                                     quote_name(it.key()) + " is not an object");
      }
      mapping->insert_or_assign(entry.key(), EncodedValue::encode(entry.value()));
    }
    collections.insert_or_assign(it.key(), std::move(mapping));
  }
  auto store = std::make_unique<LoadedStore>();
  store->adopt(std::move(collections));
  return store;
}

}  // namespace kvdex
