#include "kvdex/kvstore.h"

#include <memory>
#include <utility>

#include "kvdex/thread_annotations.h"

namespace kvdex {
namespace {

// Chains a conversion onto a future: the result of `fn(input.get())`, computed on
// the thread that completes `input`.
template <class In, class Fn>
auto then(Future<In> input, Fn fn) -> Future<std::invoke_result_t<Fn&, In>> {
  using Out = std::invoke_result_t<Fn&, In>;
  auto promise = std::make_shared<Promise<Out>>();
  Future<Out> output = promise->future();
  input.on_ready([input, promise, fn = std::move(fn)]() mutable {
    try {
      promise->set_value(fn(input.get()));
    } catch (...) {
      promise->set_error(std::current_exception());
    }
  });
  return output;
}

std::vector<KeyValue> decode_all(std::vector<EncodedKeyValue> encoded) {
  std::vector<KeyValue> out;
  out.reserve(encoded.size());
  for (auto& [key, value] : encoded) out.emplace_back(std::move(key), value.decode());
  return out;
}

std::vector<EncodedKeyValue> encode_all(std::span<const KeyValue> pairs) {
  std::vector<EncodedKeyValue> out;
  out.reserve(pairs.size());
  for (const auto& [key, value] : pairs) out.emplace_back(key, EncodedValue::encode(value));
  return out;
}

}  // namespace

void check_batch_size(int batch_size) {
  if (batch_size < 1) {
    throw Error(ErrorCode::kInvalidArgument,
                "batch_size must be at least 1, got " + std::to_string(batch_size));
  }
}

std::vector<WriteBatch> BaseKVStore::make_batches(std::span<const EncodedKeyValue> pairs,
                                                  std::string_view collection, int batch_size) {
  check_batch_size(batch_size);
  const auto per_batch = static_cast<std::size_t>(batch_size);
  std::vector<WriteBatch> batches;
  batches.reserve((pairs.size() + per_batch - 1) / per_batch);
  for (std::size_t start = 0; start < pairs.size(); start += per_batch) {
    WriteBatch& batch = batches.emplace_back();
    const std::size_t end = std::min(pairs.size(), start + per_batch);
    batch.reserve(end - start);
    for (std::size_t i = start; i < end; ++i)
      batch.put(collection, pairs[i].first, pairs[i].second);
  }
  return batches;
}

void BaseKVStore::put(std::string_view key, const Value& value, std::string_view collection) {
  put_encoded(key, EncodedValue::encode(value), collection);
}

void BaseKVStore::put_all(std::span<const KeyValue> pairs, std::string_view collection,
                          int batch_size) {
  check_batch_size(batch_size);
  put_all_encoded(encode_all(pairs), collection, batch_size);
}

std::optional<Value> BaseKVStore::get(std::string_view key, std::string_view collection) {
  std::optional<EncodedValue> encoded = get_encoded(key, collection);
  if (!encoded) return std::nullopt;
  return encoded->decode();
}

std::vector<KeyValue> BaseKVStore::get_all(std::string_view collection) {
  return decode_all(get_all_encoded(collection));
}

void BaseKVStore::put_encoded(std::string_view key, EncodedValue value,
                              std::string_view collection) {
  WriteBatch batch;
  batch.put(collection, std::string(key), std::move(value));
  write(batch);
}

void BaseKVStore::put_all_encoded(std::span<const EncodedKeyValue> pairs,
                                  std::string_view collection, int batch_size) {
  for (const WriteBatch& batch : make_batches(pairs, collection, batch_size)) write(batch);
}

std::vector<EncodedKeyValue> BaseKVStore::get_all_encoded(std::string_view collection) {
  std::vector<EncodedKeyValue> out;
  scan(collection, [&](std::string_view key, std::string_view text) {
    out.emplace_back(std::string(key), EncodedValue::adopt_canonical(text, nullptr));
  });
  return out;
}

std::uint64_t BaseKVStore::count(std::string_view collection) {
  std::uint64_t n = 0;
  scan(collection, [&](std::string_view, std::string_view) { ++n; });
  return n;
}

Executor& BaseKVStore::executor() { return default_executor(); }

// Counts the operations using the store. Shared with the PendingOperation tokens, so
// releasing the last one never touches a destroyed store.
class BaseKVStore::PendingOperations {
 public:
  void begin() KVDEX_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    ++count_;
  }
  void end() noexcept KVDEX_EXCLUDES(mu_) {
    // Notify under the lock: once the waiter sees zero it may destroy the store.
    MutexLock lock(mu_);
    if (--count_ == 0) idle_.notify_all();
  }
  void wait_idle() noexcept KVDEX_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    while (count_ != 0) idle_.wait(mu_);
  }

 private:
  Mutex mu_;
  CondVar idle_;
  std::size_t count_ KVDEX_GUARDED_BY(mu_) = 0;
};

BaseKVStore::BaseKVStore() : pending_(std::make_shared<PendingOperations>()) {}

BaseKVStore::~BaseKVStore() { wait_for_pending_operations(); }

BaseKVStore::PendingOperation::PendingOperation(PendingOperation&& other) noexcept
    : pending_(std::move(other.pending_)) {}

BaseKVStore::PendingOperation& BaseKVStore::PendingOperation::operator=(
    PendingOperation&& other) noexcept {
  if (this != &other) {
    release();
    pending_ = std::move(other.pending_);
  }
  return *this;
}

void BaseKVStore::PendingOperation::release() noexcept {
  if (pending_) std::exchange(pending_, nullptr)->end();
}

BaseKVStore::PendingOperation BaseKVStore::begin_pending_operation() {
  pending_->begin();
  return PendingOperation(pending_);
}

void BaseKVStore::wait_for_pending_operations() noexcept { pending_->wait_idle(); }

Future<void> BaseKVStore::awrite(WriteBatch batch) {
  return run_pending([this, batch = std::move(batch)] { write(batch); });
}

Future<std::optional<EncodedValue>> BaseKVStore::aget_encoded(std::string key,
                                                              std::string collection) {
  return run_pending([this, key = std::move(key), collection = std::move(collection)] {
    return get_encoded(key, collection);
  });
}

Future<std::vector<EncodedKeyValue>> BaseKVStore::aget_all_encoded(std::string collection) {
  return run_pending(
      [this, collection = std::move(collection)] { return get_all_encoded(collection); });
}

Future<bool> BaseKVStore::aremove(std::string key, std::string collection) {
  return run_pending([this, key = std::move(key), collection = std::move(collection)] {
    return remove(key, collection);
  });
}

Future<void> BaseKVStore::aput_all_encoded(std::vector<EncodedKeyValue> pairs,
                                           std::string collection, int batch_size) {
  check_batch_size(batch_size);
  return run_pending([this, pairs = std::move(pairs), collection = std::move(collection),
                      batch_size] { put_all_encoded(pairs, collection, batch_size); });
}

Future<void> BaseKVStore::aput_encoded(std::string key, EncodedValue value,
                                       std::string collection) {
  WriteBatch batch;
  batch.put(collection, std::move(key), std::move(value));
  return awrite(std::move(batch));
}

Future<void> BaseKVStore::aput(std::string key, Value value, std::string collection) {
  // Encoding validates the value now, on the caller's thread.
  return aput_encoded(std::move(key), EncodedValue::encode(value), std::move(collection));
}

Future<void> BaseKVStore::aput_all(std::vector<KeyValue> pairs, std::string collection,
                                   int batch_size) {
  check_batch_size(batch_size);
  // Encoding validates every value on the caller's thread, before anything is written.
  return aput_all_encoded(encode_all(pairs), std::move(collection), batch_size);
}

Future<std::optional<Value>> BaseKVStore::aget(std::string key, std::string collection) {
  return then(aget_encoded(std::move(key), std::move(collection)),
              [](std::optional<EncodedValue> encoded) -> std::optional<Value> {
                if (!encoded) return std::nullopt;
                return encoded->decode();
              });
}

Future<std::vector<KeyValue>> BaseKVStore::aget_all(std::string collection) {
  return then(aget_all_encoded(std::move(collection)), decode_all);
}

}  // namespace kvdex
