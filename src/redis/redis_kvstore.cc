// RedisKVStore: LlamaIndex's Redis layout on hiredis.
//
// ROUTING POINT. Every command this store sends names the Redis key it touches (the
// collection's hash) and reaches the server through Impl::route(redis_key), which
// returns the RedisNode (sync connection pool + async connections) that serves that
// key. Standalone Redis has one node. Redis Cluster routing goes there: route() picks
// the node by the key's hash slot (CRC16 with hash tags), and MOVED/ASK replies are
// recognized where replies are checked (throw_reply_error / the batch checker).
// Nothing else in this file knows how many servers there are.
#include "kvdex/redis_kvstore.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <set>
#include <unordered_map>
#include <utility>

#include "core/scheme_registry.h"
#include "kvdex/error.h"
#include "kvdex/json.h"
#include "kvdex/open.h"
#include "kvdex/redis_cluster_kvstore.h"
#include "redis/redis_async.h"
#include "redis/redis_connection.h"
#include "redis/redis_options.h"

namespace kvdex {
namespace {

using detail::AsyncRedisConnection;
using detail::AsyncRequest;
using detail::RedisConnection;
using detail::RedisConnectionPool;
using detail::reply_text;
using detail::throw_reply_error;

// Pipelined put_all keeps at most this many bytes of commands in flight.
constexpr std::size_t kPipelineWindowBytes = std::size_t{8} << 20;

std::string describe(std::string_view what, std::string_view collection) {
  return std::string(what) + " on collection " + json::quote_for_message(collection);
}

// A stored field as EncodedValue: json.dumps text is adopted as it is, other JSON
// object text canonicalized; anything else is corruption of the shared store.
EncodedValue decode_field(std::string_view text, std::string_view collection, std::string_view key,
                          const std::string& address) {
  if (json::is_dumps_object(text)) return EncodedValue::adopt_canonical(text, nullptr);
  try {
    return EncodedValue::parse(text);
  } catch (const Error& e) {
    throw Error(ErrorCode::kCorruption, "Redis at " + address + ": the value of key " +
                                            json::quote_for_message(key) + " in collection " +
                                            json::quote_for_message(collection) +
                                            " is not JSON object text: " + e.what());
  }
}

std::int64_t integer_reply(const redisReply& reply, std::string_view context,
                           const std::string& address) {
  if (reply.type == REDIS_REPLY_ERROR) throw_reply_error(reply_text(&reply), address, context);
  if (reply.type != REDIS_REPLY_INTEGER)
    throw Error(ErrorCode::kInternal,
                "Redis at " + address + ": unexpected reply type to " + std::string(context));
  return reply.integer;
}

std::optional<EncodedValue> hget_reply(const redisReply& reply, std::string_view collection,
                                       std::string_view key, const std::string& address) {
  if (reply.type == REDIS_REPLY_NIL) return std::nullopt;
  if (reply.type == REDIS_REPLY_ERROR)
    throw_reply_error(reply_text(&reply), address, describe("HGET", collection));
  if (reply.type != REDIS_REPLY_STRING)
    throw Error(ErrorCode::kInternal, "Redis at " + address + ": unexpected reply type to HGET");
  return decode_field(reply_text(&reply), collection, key, address);
}

// One HSCAN/SCAN page: the next cursor and the array of items.
struct ScanPage {
  std::string cursor;
  const redisReply* items;
};

ScanPage scan_page(const redisReply& reply, std::string_view context, const std::string& address) {
  if (reply.type == REDIS_REPLY_ERROR) throw_reply_error(reply_text(&reply), address, context);
  if (reply.type != REDIS_REPLY_ARRAY || reply.elements != 2 ||
      reply.element[0]->type != REDIS_REPLY_STRING || reply.element[1]->type != REDIS_REPLY_ARRAY) {
    throw Error(ErrorCode::kInternal,
                "Redis at " + address + ": malformed reply to " + std::string(context));
  }
  return ScanPage{std::string(reply_text(reply.element[0])), reply.element[1]};
}

// ---- Batches ----------------------------------------------------------------------

// A batch as Redis commands: each run of consecutive puts (removes) of one collection
// is one HSET (HDEL); more than one command is wrapped in MULTI/EXEC.
struct BatchCommands {
  std::size_t count = 0;  // commands, MULTI and EXEC included
  bool multi = false;
  std::vector<std::string> contexts;  // per HSET/HDEL, for messages
};

// Appends the batch's commands to `out`, and each command's end offset to `ends`.
BatchCommands append_batch(std::string& out, std::vector<std::size_t>& ends,
                           const WriteBatch& batch) {
  BatchCommands result;
  const auto ops = batch.ops();
  struct Run {
    std::size_t begin, end;
  };
  std::vector<Run> runs;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const bool put = ops[i].value.has_value();
    if (!runs.empty()) {
      const auto& first = ops[runs.back().begin];
      if (first.collection == ops[i].collection && first.value.has_value() == put) {
        runs.back().end = i + 1;
        continue;
      }
    }
    runs.push_back({i, i + 1});
  }
  result.multi = runs.size() > 1;
  if (result.multi) {
    detail::append_resp_command(out, {"MULTI"});
    ends.push_back(out.size());
  }
  std::vector<std::string_view> args;
  for (const Run& run : runs) {
    const auto& first = ops[run.begin];
    const bool put = first.value.has_value();
    const std::string& collection = batch.collection_of(first);
    args.clear();
    args.reserve(2 + (run.end - run.begin) * (put ? 2 : 1));
    args.push_back(put ? "HSET" : "HDEL");
    args.push_back(collection);
    for (std::size_t i = run.begin; i < run.end; ++i) {
      args.push_back(ops[i].key);
      if (put) args.push_back(ops[i].value->text());
    }
    detail::append_resp_command(out, args);
    ends.push_back(out.size());
    result.contexts.push_back(describe(put ? "HSET" : "HDEL", collection));
  }
  if (result.multi) {
    detail::append_resp_command(out, {"EXEC"});
    ends.push_back(out.size());
  }
  result.count = runs.size() + (result.multi ? 2 : 0);
  return result;
}

// Checks a batch's replies as they arrive; throws at the reply that shows the batch
// was not applied.
class BatchReplyChecker {
 public:
  BatchReplyChecker(BatchCommands commands, const std::string& address)
      : commands_(std::move(commands)), address_(address) {}

  std::size_t count() const { return commands_.count; }

  void on_reply(std::size_t index, const redisReply& reply) {
    if (!commands_.multi) {
      if (reply.type == REDIS_REPLY_ERROR)
        throw_reply_error(reply_text(&reply), address_, commands_.contexts[0]);
      return;
    }
    const bool is_exec = index + 1 == commands_.count;
    if (!is_exec) {
      if (reply.type == REDIS_REPLY_ERROR && queue_error_.empty()) {
        queue_error_ = reply_text(&reply);
        queue_context_ = index == 0 ? std::string("MULTI") : commands_.contexts[index - 1];
      }
      return;
    }
    if (!queue_error_.empty()) throw_reply_error(queue_error_, address_, queue_context_);
    if (reply.type == REDIS_REPLY_ERROR)
      throw_reply_error(reply_text(&reply), address_, "EXEC of a batch");
    if (reply.type != REDIS_REPLY_ARRAY || reply.elements + 2 != commands_.count)
      throw Error(ErrorCode::kInternal, "Redis at " + address_ + ": a batch's EXEC was aborted");
    for (std::size_t i = 0; i < reply.elements; ++i) {
      if (reply.element[i]->type == REDIS_REPLY_ERROR)
        throw_reply_error(reply_text(reply.element[i]), address_, commands_.contexts[i]);
    }
  }

 private:
  BatchCommands commands_;
  const std::string& address_;
  std::string queue_error_;
  std::string queue_context_;
};

// Refuses, before anything is sent, a batch that names a string longer than the
// server's proto-max-bulk-len (the server would drop the connection mid-pipeline).
void check_bulk_lengths(const WriteBatch& batch, std::int64_t limit, const std::string& address) {
  const auto too_long = [&](std::size_t size) { return static_cast<std::int64_t>(size) > limit; };
  for (const auto& op : batch.ops()) {
    const std::string& collection = batch.collection_of(op);
    const char* what = nullptr;
    std::size_t size = 0;
    if (op.value && too_long(op.value->size())) {
      what = "the value of key ";
      size = op.value->size();
    } else if (too_long(op.key.size())) {
      what = "key ";
      size = op.key.size();
    } else if (too_long(collection.size())) {
      what = "the name of the collection of key ";
      size = collection.size();
    }
    if (what != nullptr) {
      throw Error(ErrorCode::kInvalidArgument,
                  std::string(what) + json::quote_for_message(op.key) + " in collection " +
                      json::quote_for_message(collection) + " is " + std::to_string(size) +
                      " bytes, over the proto-max-bulk-len of Redis at " + address + " (" +
                      std::to_string(limit) + " bytes); nothing of its batch was written");
    }
  }
}

}  // namespace

// One server: what route() returns.
struct RedisNode {
  RedisNode(const RedisOptions& options, const std::string& address,
            std::shared_ptr<std::atomic<std::uint64_t>> async_opened, std::size_t loop_offset)
      : pool(options) {
    for (int i = 0; i < options.async_connections; ++i) {
      async.push_back(std::make_shared<AsyncRedisConnection>(
          options, address, detail::redis_event_loop_for(loop_offset + static_cast<std::size_t>(i)),
          async_opened));
    }
  }

  // The async connections in turn.
  const std::shared_ptr<AsyncRedisConnection>& next_async() {
    return async[next.fetch_add(1, std::memory_order_relaxed) % async.size()];
  }

  RedisConnectionPool pool;
  std::vector<std::shared_ptr<AsyncRedisConnection>> async;
  std::atomic<std::size_t> next{0};
};

struct RedisKVStore::Impl {
  explicit Impl(const RedisOptions& opts)
      : options(opts),
        address(detail::redis_address(opts.host, opts.port)),
        async_opened(std::make_shared<std::atomic<std::uint64_t>>(0)) {
    static std::atomic<std::size_t> stores{0};
    node = std::make_unique<RedisNode>(options, address, async_opened, stores.fetch_add(1));
  }

  // The routing point (see the file comment): the node serving `redis_key`. Every
  // operation passes here, so it is also where a closed store refuses.
  RedisNode& route(std::string_view redis_key) {
    static_cast<void>(redis_key);
    check_open();
    return *node;
  }

  void check_open() const {
    if (closed.load(std::memory_order_acquire))
      throw Error(ErrorCode::kFailedPrecondition, "the Redis store at " + address + " was closed");
  }

  void check_writable() const {
    check_open();
    if (options.read_only)
      throw Error(ErrorCode::kNotSupported,
                  "the Redis store at " + address + " was opened read-only");
  }

  const RedisOptions options;
  const std::string address;
  std::shared_ptr<std::atomic<std::uint64_t>> async_opened;
  std::unique_ptr<RedisNode> node;
  std::atomic<bool> closed{false};
};

RedisKVStore::RedisKVStore(const RedisOptions& options) {
  detail::check_redis_options(options);
  if (options.cluster || options.shards > 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "RedisKVStore talks to one Redis in LlamaIndex's layout; cluster=1 and shards=N "
                "are served by kvdex::RedisClusterKVStore (kvdex::open picks it)");
  }
  impl_ = std::make_shared<Impl>(options);
}

RedisKVStore::~RedisKVStore() {
  wait_for_pending_operations();
  if (impl_) {
    for (const auto& connection : impl_->node->async) connection->shutdown();
  }
}

void RedisKVStore::close() {
  if (impl_->closed.exchange(true, std::memory_order_acq_rel)) return;
  wait_for_pending_operations();
  for (const auto& connection : impl_->node->async) connection->shutdown();
  impl_->node->pool.close_idle();
}

const RedisOptions& RedisKVStore::options() const noexcept { return impl_->options; }
const std::string& RedisKVStore::address() const noexcept { return impl_->address; }
std::uint64_t RedisKVStore::connections_opened() const noexcept {
  return impl_->node->pool.connections_opened() + impl_->async_opened->load();
}

// ---- Synchronous API ----------------------------------------------------------------

void RedisKVStore::write(const WriteBatch& batch) {
  impl_->check_writable();
  if (batch.empty()) return;
  RedisNode& target = impl_->route(batch.collections().front());
  check_bulk_lengths(batch, target.pool.max_bulk_length(), impl_->address);
  std::string text;
  std::vector<std::size_t> ends;
  const BatchCommands commands = append_batch(text, ends, batch);
  const auto names = batch.collections();
  if (names.size() == 1) {
    BatchReplyChecker checker(commands, impl_->address);
    target.pool.run([&](RedisConnection& connection) {
      std::vector<detail::RedisReplyPtr> replies = connection.pipeline(text, checker.count());
      for (std::size_t i = 0; i < replies.size(); ++i) checker.on_reply(i, *replies[i]);
    });
    return;
  }
  // Several collections: Redis still applies the rest of an EXEC when one command
  // fails (WRONGTYPE), so the collections' types are checked first, under WATCH; EXEC
  // is then refused (nil) if any of them changed in between, and the batch retried.
  std::string check;
  std::vector<std::string_view> watch = {"WATCH"};
  for (const std::string& name : names) watch.push_back(name);
  detail::append_resp_command(check, watch);
  for (const std::string& name : names) detail::append_resp_command(check, {"TYPE", name});
  target.pool.run([&](RedisConnection& connection) {
    constexpr int kAttempts = 16;
    for (int attempt = 1;; ++attempt) {
      std::vector<detail::RedisReplyPtr> types = connection.pipeline(check, names.size() + 1);
      std::string refusal;
      for (std::size_t i = 0; i < types.size(); ++i) {
        const redisReply& reply = *types[i];
        if (reply.type == REDIS_REPLY_ERROR) {
          refusal = std::string(reply_text(&reply));
          break;
        }
        const std::string_view type = i == 0 ? "hash" : reply_text(&reply);
        if (type != "hash" && type != "none") {
          connection.command({"UNWATCH"});
          throw Error(ErrorCode::kFailedPrecondition,
                      "Redis at " + impl_->address + ": collection " +
                          json::quote_for_message(names[i - 1]) + " is a Redis key of type " +
                          std::string(type) + ", not a hash; nothing of the batch was written");
        }
      }
      if (!refusal.empty()) {
        connection.command({"UNWATCH"});
        throw_reply_error(refusal, impl_->address, "WATCH/TYPE before a batch");
      }
      BatchReplyChecker checker(commands, impl_->address);
      std::vector<detail::RedisReplyPtr> replies = connection.pipeline(text, checker.count());
      if (replies.back()->type == REDIS_REPLY_NIL && attempt < kAttempts) continue;
      for (std::size_t i = 0; i < replies.size(); ++i) checker.on_reply(i, *replies[i]);
      return;
    }
  });
}

void RedisKVStore::put_all_encoded(std::span<const EncodedKeyValue> pairs,
                                   std::string_view collection, int batch_size) {
  check_batch_size(batch_size);
  impl_->check_writable();
  if (pairs.empty()) return;
  const std::vector<WriteBatch> batches = make_batches(pairs, collection, batch_size);
  RedisNode& target = impl_->route(collection);
  const std::int64_t limit = target.pool.max_bulk_length();
  for (const WriteBatch& batch : batches) check_bulk_lengths(batch, limit, impl_->address);
  // Windows of pipelined batches: one round trip per window, each batch atomic.
  std::size_t next = 0;
  while (next < batches.size()) {
    std::string text;
    std::vector<std::size_t> ends;
    std::vector<BatchReplyChecker> checkers;
    while (next < batches.size() && (checkers.empty() || text.size() < kPipelineWindowBytes)) {
      checkers.emplace_back(append_batch(text, ends, batches[next]), impl_->address);
      ++next;
    }
    std::size_t total = 0;
    for (const auto& checker : checkers) total += checker.count();
    target.pool.run([&](RedisConnection& connection) {
      std::vector<detail::RedisReplyPtr> replies = connection.pipeline(text, total);
      std::size_t index = 0;
      for (auto& checker : checkers) {
        for (std::size_t i = 0; i < checker.count(); ++i, ++index)
          checker.on_reply(i, *replies[index]);
      }
    });
  }
}

std::optional<EncodedValue> RedisKVStore::get_encoded(std::string_view key,
                                                      std::string_view collection) {
  detail::RedisReplyPtr reply = impl_->route(collection).pool.run([&](RedisConnection& connection) {
    return connection.command({"HGET", collection, key});
  });
  return hget_reply(*reply, collection, key, impl_->address);
}

void RedisKVStore::scan(std::string_view collection, const ScanVisitor& visit) {
  RedisNode& target = impl_->route(collection);
  const std::string count = std::to_string(impl_->options.scan_count);
  const std::string context = describe("HSCAN", collection);
  // The cursor of the next page not yet visited: a retry on a new connection resumes
  // there (a cursor is valid on any connection), so no entry is visited twice by it.
  std::string cursor = "0";
  bool finished = false;
  target.pool.run([&](RedisConnection& connection) {
    std::string request;
    detail::append_resp_command(request, {"HSCAN", collection, cursor, "COUNT", count});
    connection.send(request, 1);
    while (!finished) {
      const detail::RedisReplyPtr reply = connection.read_reply();
      const ScanPage page = scan_page(*reply, context, impl_->address);
      // Ask for the next page before visiting this one: the server builds it while
      // this thread checks and hands on the current one.
      if (page.cursor != "0") {
        request.clear();
        detail::append_resp_command(request, {"HSCAN", collection, page.cursor, "COUNT", count});
        connection.send(request, 1);
      }
      for (std::size_t i = 0; i + 1 < page.items->elements; i += 2) {
        const std::string_view key = reply_text(page.items->element[i]);
        const std::string_view text = reply_text(page.items->element[i + 1]);
        if (json::is_dumps_object(text)) {
          visit(key, text);
        } else {
          const EncodedValue value = decode_field(text, collection, key, impl_->address);
          visit(key, value.text());
        }
      }
      cursor = page.cursor;
      finished = cursor == "0";
    }
  });
}

std::vector<EncodedKeyValue> RedisKVStore::get_all_encoded(std::string_view collection) {
  std::vector<EncodedKeyValue> out;
  // HSCAN may return a field twice (the hash was resized during the scan): index the
  // keys by hash, without copying them, and keep the last value.
  std::unordered_multimap<std::size_t, std::size_t> seen;
  const std::hash<std::string_view> hash;
  scan(collection, [&](std::string_view key, std::string_view text) {
    EncodedValue value = EncodedValue::adopt_canonical(text, nullptr);
    const std::size_t h = hash(key);
    auto [first, last] = seen.equal_range(h);
    for (auto it = first; it != last; ++it) {
      if (out[it->second].first == key) {
        out[it->second].second = std::move(value);
        return;
      }
    }
    seen.emplace(h, out.size());
    out.emplace_back(std::string(key), std::move(value));
  });
  return out;
}

bool RedisKVStore::remove(std::string_view key, std::string_view collection) {
  impl_->check_writable();
  detail::RedisReplyPtr reply = impl_->route(collection).pool.run([&](RedisConnection& connection) {
    return connection.command({"HDEL", collection, key});
  });
  return integer_reply(*reply, describe("HDEL", collection), impl_->address) > 0;
}

std::uint64_t RedisKVStore::count(std::string_view collection) {
  detail::RedisReplyPtr reply = impl_->route(collection).pool.run([&](RedisConnection& connection) {
    return connection.command({"HLEN", collection});
  });
  return static_cast<std::uint64_t>(
      integer_reply(*reply, describe("HLEN", collection), impl_->address));
}

std::vector<std::string> RedisKVStore::collections() {
  // Every hash of the database (the layout keeps no registry of collections). The
  // one command that names no key: on Redis Cluster it must SCAN every master.
  std::set<std::string> names;
  RedisNode& target = impl_->route("");
  const std::string count = std::to_string(impl_->options.scan_count);
  std::string cursor = "0";
  do {
    detail::RedisReplyPtr reply = target.pool.run([&](RedisConnection& connection) {
      return connection.command({"SCAN", cursor, "COUNT", count, "TYPE", "hash"});
    });
    const ScanPage page = scan_page(*reply, "SCAN", impl_->address);
    for (std::size_t i = 0; i < page.items->elements; ++i)
      names.emplace(reply_text(page.items->element[i]));
    cursor = page.cursor;
  } while (cursor != "0");
  return {names.begin(), names.end()};
}

// ---- Asynchronous API ---------------------------------------------------------------
//
// Each operation is one AsyncRequest (or a chain of them on one connection) whose
// on_done completes the Future from the loop thread. The PendingOperation token is
// released first, so a Future's callback may destroy the store.

namespace {

template <class T>
struct AsyncOperation {
  using Stored = std::conditional_t<std::is_void_v<T>, bool, T>;

  std::function<void()> release_store;  // releases the PendingOperation
  Promise<T> promise;
  std::optional<Stored> result;

  void finish(std::exception_ptr error) {
    release_store();
    release_store = nullptr;
    if (error) {
      promise.set_error(std::move(error));
    } else if constexpr (std::is_void_v<T>) {
      promise.set_value();
    } else {
      promise.set_value(std::move(*result));
    }
  }
};

// A put_all in flight: its batches, sent in pipelined windows on one connection.
struct PutAllOperation : AsyncOperation<void> {
  std::vector<WriteBatch> batches;
  std::size_t next = 0;
  std::shared_ptr<AsyncRedisConnection> connection;
  std::string address;
};

void send_put_all_window(const std::shared_ptr<PutAllOperation>& operation) {
  auto request = std::make_shared<AsyncRequest>();
  auto checkers = std::make_shared<std::vector<BatchReplyChecker>>();
  auto& batches = operation->batches;
  while (operation->next < batches.size() &&
         (checkers->empty() || request->commands.size() < kPipelineWindowBytes)) {
    checkers->emplace_back(
        append_batch(request->commands, request->command_ends, batches[operation->next]),
        operation->address);
    ++operation->next;
  }
  auto positions = std::make_shared<std::pair<std::size_t, std::size_t>>(0, 0);  // checker, index
  request->on_reply = [checkers, positions](std::size_t, const redisReply& reply) {
    auto& [checker, index] = *positions;
    (*checkers)[checker].on_reply(index, reply);
    if (++index == (*checkers)[checker].count()) {
      ++checker;
      index = 0;
    }
  };
  request->on_done = [operation](std::exception_ptr error) {
    if (error || operation->next == operation->batches.size()) {
      operation->finish(std::move(error));
    } else {
      send_put_all_window(operation);
    }
  };
  operation->connection->submit(std::move(request));
}

// Sends `operation`'s batches on the next of `target`'s async connections.
// `release_store` ends the operation's use of the store (its PendingOperation).
Future<void> start_put_all(std::shared_ptr<PutAllOperation> operation, RedisNode& target,
                           std::function<void()> release_store, const std::string& address) {
  operation->release_store = std::move(release_store);
  operation->connection = target.next_async();
  operation->address = address;
  Future<void> future = operation->promise.future();
  send_put_all_window(operation);
  return future;
}

// An aget_all in flight: HSCAN pages chained on one connection.
struct GetAllOperation : AsyncOperation<std::vector<EncodedKeyValue>> {
  std::string collection;
  std::string cursor = "0";
  std::string count;
  std::unordered_map<std::string, std::size_t> seen;
  std::shared_ptr<AsyncRedisConnection> connection;
  std::string address;
};

void send_scan_page(const std::shared_ptr<GetAllOperation>& operation) {
  auto request = std::make_shared<AsyncRequest>();
  request->add({"HSCAN", operation->collection, operation->cursor, "COUNT", operation->count});
  request->on_reply = [operation](std::size_t, const redisReply& reply) {
    const ScanPage page =
        scan_page(reply, describe("HSCAN", operation->collection), operation->address);
    auto& out = *operation->result;
    for (std::size_t i = 0; i + 1 < page.items->elements; i += 2) {
      const std::string_view key = reply_text(page.items->element[i]);
      EncodedValue value = decode_field(reply_text(page.items->element[i + 1]),
                                        operation->collection, key, operation->address);
      auto [it, inserted] = operation->seen.try_emplace(std::string(key), out.size());
      if (inserted) {
        out.emplace_back(it->first, std::move(value));
      } else {
        out[it->second].second = std::move(value);
      }
    }
    operation->cursor = page.cursor;
  };
  request->on_done = [operation](std::exception_ptr error) {
    if (error || operation->cursor == "0") {
      operation->finish(std::move(error));
    } else {
      send_scan_page(operation);
    }
  };
  operation->connection->submit(std::move(request));
}

}  // namespace

Future<void> RedisKVStore::awrite(WriteBatch batch) {
  impl_->check_writable();
  if (batch.empty()) return make_ready_future();
  RedisNode& target = impl_->route(batch.collections().front());
  check_bulk_lengths(batch, target.pool.known_max_bulk_length(), impl_->address);
  // A batch over several collections needs write()'s WATCH/TYPE round trip first:
  // rare enough (put_all names one collection) to run it on the executor.
  if (batch.collections().size() > 1) {
    return run_pending([this, batch = std::move(batch)] { write(batch); });
  }
  // One batch is a put_all of one window.
  auto operation = std::make_shared<PutAllOperation>();
  operation->batches.push_back(std::move(batch));
  auto token = std::make_shared<PendingOperation>(begin_pending_operation());
  return start_put_all(
      std::move(operation), target, [token] { token->release(); }, impl_->address);
}

Future<void> RedisKVStore::aput_all_encoded(std::vector<EncodedKeyValue> pairs,
                                            std::string collection, int batch_size) {
  check_batch_size(batch_size);
  impl_->check_writable();
  if (pairs.empty()) return make_ready_future();
  RedisNode& target = impl_->route(collection);
  auto operation = std::make_shared<PutAllOperation>();
  operation->batches = make_batches(pairs, collection, batch_size);
  const std::int64_t limit = target.pool.known_max_bulk_length();
  for (const WriteBatch& batch : operation->batches)
    check_bulk_lengths(batch, limit, impl_->address);
  auto token = std::make_shared<PendingOperation>(begin_pending_operation());
  return start_put_all(
      std::move(operation), target, [token] { token->release(); }, impl_->address);
}

Future<std::optional<EncodedValue>> RedisKVStore::aget_encoded(std::string key,
                                                               std::string collection) {
  RedisNode& target = impl_->route(collection);
  auto operation = std::make_shared<AsyncOperation<std::optional<EncodedValue>>>();
  auto token = std::make_shared<PendingOperation>(begin_pending_operation());
  operation->release_store = [token] { token->release(); };
  Future<std::optional<EncodedValue>> future = operation->promise.future();
  auto request = std::make_shared<AsyncRequest>();
  request->add({"HGET", collection, key});
  request->on_reply = [operation, collection = std::move(collection), key = std::move(key),
                       address = impl_->address](std::size_t, const redisReply& reply) {
    operation->result.emplace(hget_reply(reply, collection, key, address));
  };
  request->on_done = [operation](std::exception_ptr error) { operation->finish(std::move(error)); };
  target.next_async()->submit(std::move(request));
  return future;
}

Future<std::vector<EncodedKeyValue>> RedisKVStore::aget_all_encoded(std::string collection) {
  RedisNode& target = impl_->route(collection);
  auto operation = std::make_shared<GetAllOperation>();
  auto token = std::make_shared<PendingOperation>(begin_pending_operation());
  operation->release_store = [token] { token->release(); };
  operation->result.emplace();
  operation->collection = std::move(collection);
  operation->count = std::to_string(impl_->options.scan_count);
  operation->connection = target.next_async();
  operation->address = impl_->address;
  Future<std::vector<EncodedKeyValue>> future = operation->promise.future();
  send_scan_page(operation);
  return future;
}

Future<bool> RedisKVStore::aremove(std::string key, std::string collection) {
  impl_->check_writable();
  RedisNode& target = impl_->route(collection);
  auto operation = std::make_shared<AsyncOperation<bool>>();
  auto token = std::make_shared<PendingOperation>(begin_pending_operation());
  operation->release_store = [token] { token->release(); };
  Future<bool> future = operation->promise.future();
  auto request = std::make_shared<AsyncRequest>();
  request->add({"HDEL", collection, key});
  request->on_reply = [operation, collection = std::move(collection), address = impl_->address](
                          std::size_t, const redisReply& reply) {
    operation->result.emplace(integer_reply(reply, describe("HDEL", collection), address) > 0);
  };
  request->on_done = [operation](std::exception_ptr error) { operation->finish(std::move(error)); };
  target.next_async()->submit(std::move(request));
  return future;
}

// ---- Registration -------------------------------------------------------------------

namespace detail {

void register_redis_scheme() {
  auto factory = [](const StoreUri& uri,
                    const OpenOptions& open_options) -> std::unique_ptr<BaseKVStore> {
    RedisOptions options = parse_redis_uri(uri.text);
    options.read_only = options.read_only || open_options.read_only;
    if (options.cluster || options.shards > 0)
      return std::make_unique<RedisClusterKVStore>(options);
    return std::make_unique<RedisKVStore>(options);
  };
  register_builtin_scheme("redis", factory);
  // Registered so that the refusal names TLS instead of "unknown scheme".
  register_builtin_scheme("rediss", factory);
}

}  // namespace detail
}  // namespace kvdex
