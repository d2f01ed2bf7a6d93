// RedisClusterKVStore: slot routing over per-node RedisKVStores, and the sharded layout.
//
// Each node is a plain RedisKVStore (pool, async connections, reconnection, error
// mapping) plus a small pool of raw connections for what the store API has no call for
// (CLUSTER SLOTS, the sharded layout's marker). This file only decides which node and
// which hash a command goes to, and what to do when a node answers MOVED/ASK or is gone.
#include "kvdex/redis_cluster_kvstore.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <set>
#include <thread>
#include <unordered_map>

#include "kvdex/error.h"
#include "kvdex/json.h"
#include "kvdex/thread_annotations.h"
#include "redis/cluster_slot_map.h"
#include "redis/redis_connection.h"
#include "redis/redis_options.h"
#include "redis/sharded_layout.h"

namespace kvdex {
namespace {

using redis::ClusterNode;
using redis::ClusterRedirect;
using redis::ClusterRedirectError;
using redis::ClusterSlotMap;

// Redirections (MOVED/ASK) and map re-reads one call follows before giving up.
constexpr int kMaxRedirects = 16;

std::string quoted(std::string_view name) { return json::quote_for_message(name); }

}  // namespace

namespace detail {

// One cluster node as the store uses it.
struct RedisClusterNode {
  ClusterNode address;
  std::shared_ptr<RedisKVStore> store;
  std::unique_ptr<detail::RedisConnectionPool> raw;
};

// A sharded collection's shard count and hash names (computed once).
struct ShardedCollection {
  int shards = 0;
  std::vector<std::string> hash_names;
};

}  // namespace detail

using Node = detail::RedisClusterNode;
using detail::ShardedCollection;

struct RedisClusterKVStore::Impl {
  explicit Impl(const RedisOptions& opts) : options(opts), seed{opts.host, opts.port} {}

  RedisOptions node_options(const ClusterNode& node, bool raw) const {
    RedisOptions result = options;
    result.host = node.host;
    result.port = node.port;
    result.cluster = false;
    result.shards = 0;
    if (raw) result.pool_size = 2;
    return result;
  }

  std::shared_ptr<Node> node(const ClusterNode& address) KVDEX_EXCLUDES(mu) {
    MutexLock lock(mu);
    std::shared_ptr<Node>& slot = nodes[address];
    if (!slot) {
      slot = std::make_shared<Node>();
      slot->address = address;
      slot->store = std::make_shared<RedisKVStore>(node_options(address, false));
      slot->raw = std::make_unique<detail::RedisConnectionPool>(node_options(address, true));
    }
    return slot;
  }

  // Reads the slot map again unless someone did since `seen_generation`.
  void refresh(std::uint64_t seen_generation) KVDEX_EXCLUDES(mu, refresh_mu) {
    MutexLock serialize(refresh_mu);
    std::vector<ClusterNode> candidates;
    {
      MutexLock lock(mu);
      if (generation != seen_generation) return;
      candidates = map.masters();
      for (const ClusterNode& known : map.known_nodes()) {
        if (std::find(candidates.begin(), candidates.end(), known) == candidates.end())
          candidates.push_back(known);
      }
    }
    if (std::find(candidates.begin(), candidates.end(), seed) == candidates.end())
      candidates.push_back(seed);
    std::string failures;
    for (const ClusterNode& candidate : candidates) {
      try {
        std::shared_ptr<Node> asked = node(candidate);
        detail::RedisReplyPtr reply = asked->raw->run([](detail::RedisConnection& connection) {
          return connection.command({"CLUSTER", "SLOTS"});
        });
        ClusterSlotMap fresh = ClusterSlotMap::from_cluster_slots_reply(*reply, candidate);
        if (fresh.masters().empty()) {
          failures += " " + candidate.address() + ": serves no slots;";
          continue;
        }
        refreshes.fetch_add(1, std::memory_order_relaxed);
        MutexLock lock(mu);
        map = std::move(fresh);
        ++generation;
        return;
      } catch (const Error& error) {
        if (error.code() == ErrorCode::kFailedPrecondition) throw;  // not a cluster node
        failures += " " + std::string(error.what()) + ";";
      }
    }
    throw Error(ErrorCode::kUnavailable, "no node of the Redis Cluster seeded at " +
                                             seed.address() +
                                             " answered CLUSTER SLOTS:" + failures);
  }

  // The node serving `redis_key`, and the map generation that said so.
  std::shared_ptr<Node> route(std::string_view redis_key, std::uint64_t* seen)
      KVDEX_EXCLUDES(mu, refresh_mu) {
    if (!options.cluster) {
      *seen = 0;
      return node(seed);
    }
    const int slot = redis::key_hash_slot(redis_key);
    for (int attempt = 0; attempt < 2; ++attempt) {
      std::optional<ClusterNode> owner;
      {
        MutexLock lock(mu);
        *seen = generation;
        if (const ClusterNode* master = map.master_for_slot(slot)) owner = *master;
      }
      if (owner) return node(*owner);
      refresh(*seen);
    }
    throw Error(ErrorCode::kUnavailable, "no master of the Redis Cluster seeded at " +
                                             seed.address() + " serves hash slot " +
                                             std::to_string(slot) + " (cluster down?)");
  }

  // After a MOVED: the slot is assigned to its new master at once, then the whole map
  // is read again (one slot moved: others probably did too, a reshard or a failover).
  void follow_moved(const ClusterRedirect& redirect, std::uint64_t seen)
      KVDEX_EXCLUDES(mu, refresh_mu) {
    {
      MutexLock lock(mu);
      map.assign_slot(redirect.slot, redirect.target);
    }
    try {
      refresh(seen);
    } catch (const Error&) {
      // The assigned slot is enough to go on; the next MOVED refreshes again.
    }
  }

  // Runs fn(Node&) on the node serving redis_key, following MOVED (map updated, fn
  // again), ASK (ask(Node&) on the node named: the same operation sent after ASKING, on
  // a raw connection) and a master that went away (if the map then names another master
  // for the slot).
  template <class Fn, class AskFn>
  auto with_routing(std::string_view redis_key, Fn&& fn, AskFn&& ask)
      -> decltype(fn(std::declval<Node&>())) {
    for (int attempt = 0;; ++attempt) {
      std::uint64_t seen = 0;
      std::shared_ptr<Node> target = route(redis_key, &seen);
      try {
        return fn(*target);
      } catch (const ClusterRedirectError& error) {
        if (!options.cluster || attempt >= kMaxRedirects) throw;
        const std::optional<ClusterRedirect> redirect =
            redis::parse_cluster_redirect(error.reply(), target->address);
        if (!redirect) throw;
        if (redirect->kind == ClusterRedirect::Kind::kMoved) {
          follow_moved(*redirect, seen);
          continue;
        }
        // ASK: the slot is being migrated and the key is (or will be created) on the
        // target. The map stays as it is: the source still owns the slot.
        try {
          return ask(*node(redirect->target));
        } catch (const ClusterRedirectError&) {
          // The migration ended meanwhile (the target answered MOVED, or the source took
          // the slot back): route again.
          std::this_thread::sleep_for(std::chrono::milliseconds(attempt + 1));
        }
      } catch (const Error& error) {
        if (!options.cluster || error.code() != ErrorCode::kUnavailable || attempt >= kMaxRedirects)
          throw;
        // A master went away: if the cluster has promoted a replica, go there.
        try {
          refresh(seen);
        } catch (const Error&) {
          throw error;
        }
        std::uint64_t now = 0;
        if (route(redis_key, &now)->address == target->address) throw;
      }
    }
  }

  // ---- ASK: the operations sent after ASKING on a raw connection ---------------------

  // Sends `count` commands (RESP), each group opened by ASKING, to `target`; returns the
  // replies. A MOVED/ASK reply is thrown as ClusterRedirectError, another error reply
  // as its kvdex code naming `context`.
  std::vector<detail::RedisReplyPtr> asking(Node& target, const std::string& commands,
                                            std::size_t count, std::string_view context) {
    std::vector<detail::RedisReplyPtr> replies = target.raw->run(
        [&](detail::RedisConnection& connection) { return connection.pipeline(commands, count); });
    for (const auto& reply : replies) check_asked_reply(*reply, target, context);
    return replies;
  }

  static void check_asked_reply(const redisReply& reply, const Node& target,
                                std::string_view context) {
    if (reply.type == REDIS_REPLY_ERROR)
      detail::throw_reply_error(detail::reply_text(&reply), target.address.address(), context);
    if (reply.type == REDIS_REPLY_ARRAY) {
      for (std::size_t i = 0; i < reply.elements; ++i) {
        if (reply.element[i]->type == REDIS_REPLY_ERROR)
          detail::throw_reply_error(detail::reply_text(reply.element[i]), target.address.address(),
                                    context);
      }
    }
  }

  static EncodedValue decode(std::string_view text, std::string_view hash, std::string_view key) {
    if (json::is_dumps_object(text)) return EncodedValue::adopt_canonical(text, nullptr);
    try {
      return EncodedValue::parse(text);
    } catch (const Error& e) {
      throw Error(ErrorCode::kCorruption, "the value of key " + quoted(key) + " in hash " +
                                              quoted(hash) +
                                              " is not JSON object text: " + e.what());
    }
  }

  std::optional<EncodedValue> ask_get(Node& target, std::string_view hash, std::string_view key) {
    std::string commands;
    detail::append_resp_command(commands, {"ASKING"});
    detail::append_resp_command(commands, {"HGET", hash, key});
    auto replies = asking(target, commands, 2, "HGET on " + quoted(hash));
    if (replies[1]->type == REDIS_REPLY_NIL) return std::nullopt;
    return decode(detail::reply_text(replies[1].get()), hash, key);
  }

  bool ask_remove(Node& target, std::string_view hash, std::string_view key) {
    std::string commands;
    detail::append_resp_command(commands, {"ASKING"});
    detail::append_resp_command(commands, {"HDEL", hash, key});
    return asking(target, commands, 2, "HDEL on " + quoted(hash))[1]->integer > 0;
  }

  std::uint64_t ask_count(Node& target, std::string_view hash) {
    std::string commands;
    detail::append_resp_command(commands, {"ASKING"});
    detail::append_resp_command(commands, {"HLEN", hash});
    return static_cast<std::uint64_t>(
        asking(target, commands, 2, "HLEN on " + quoted(hash))[1]->integer);
  }

  void ask_scan(Node& target, std::string_view hash, const ScanVisitor& visit) {
    const std::string count = std::to_string(options.scan_count);
    std::string cursor = "0";
    do {
      std::string commands;
      detail::append_resp_command(commands, {"ASKING"});
      detail::append_resp_command(commands, {"HSCAN", hash, cursor, "COUNT", count});
      auto replies = asking(target, commands, 2, "HSCAN on " + quoted(hash));
      const redisReply& page = *replies[1];
      if (page.type != REDIS_REPLY_ARRAY || page.elements != 2 ||
          page.element[1]->type != REDIS_REPLY_ARRAY)
        throw Error(ErrorCode::kInternal, "malformed HSCAN reply from " + target.address.address());
      const redisReply& items = *page.element[1];
      for (std::size_t i = 0; i + 1 < items.elements; i += 2) {
        const std::string_view key = detail::reply_text(items.element[i]);
        const EncodedValue value = decode(detail::reply_text(items.element[i + 1]), hash, key);
        visit(key, value.text());
      }
      cursor = std::string(detail::reply_text(page.element[0]));
    } while (cursor != "0");
  }

  // A batch whose ops all land in one slot: ASKING, MULTI, one HSET/HDEL per op, EXEC
  // (ASKING holds for the whole transaction: Redis clears it after a command outside
  // MULTI only).
  void ask_write(Node& target, const WriteBatch& batch) {
    std::string commands;
    detail::append_resp_command(commands, {"ASKING"});
    detail::append_resp_command(commands, {"MULTI"});
    for (const auto& op : batch.ops()) {
      const std::string& hash = batch.collection_of(op);
      if (op.value) {
        detail::append_resp_command(commands, {"HSET", hash, op.key, op.value->text()});
      } else {
        detail::append_resp_command(commands, {"HDEL", hash, op.key});
      }
    }
    detail::append_resp_command(commands, {"EXEC"});
    auto replies = asking(target, commands, batch.size() + 3, "a batch");
    if (replies.back()->type != REDIS_REPLY_ARRAY)
      throw Error(ErrorCode::kInternal,
                  "Redis at " + target.address.address() + ": a batch's EXEC was aborted");
  }

  void ask_put_all(Node& target, std::span<const EncodedKeyValue> pairs, std::string_view hash,
                   int batch_size) {
    for (std::size_t first = 0; first < pairs.size();
         first += static_cast<std::size_t>(batch_size)) {
      WriteBatch batch;
      const std::size_t end = std::min(pairs.size(), first + static_cast<std::size_t>(batch_size));
      for (std::size_t i = first; i < end; ++i) batch.put(hash, pairs[i].first, pairs[i].second);
      ask_write(target, batch);
    }
  }

  // One raw command on the node serving redis_key; error replies MOVED/ASK are thrown
  // as ClusterRedirectError (so with_routing follows them), others returned.
  detail::RedisReplyPtr raw_command(std::string_view redis_key,
                                    std::initializer_list<std::string_view> args) {
    const auto send = [&](Node& target, bool ask) {
      std::string commands;
      if (ask) detail::append_resp_command(commands, {"ASKING"});
      detail::append_resp_command(commands, args);
      std::vector<detail::RedisReplyPtr> replies =
          target.raw->run([&](detail::RedisConnection& connection) {
            return connection.pipeline(commands, ask ? 2 : 1);
          });
      detail::RedisReplyPtr reply = std::move(replies.back());
      if (reply->type == REDIS_REPLY_ERROR) {
        const std::string_view text = detail::reply_text(reply.get());
        if (text.starts_with("MOVED ") || text.starts_with("ASK "))
          throw ClusterRedirectError("Redis at " + target.address.address() + " redirected",
                                     std::string(text));
      }
      return reply;
    };
    return with_routing(
        redis_key, [&](Node& target) { return send(target, false); },
        [&](Node& target) { return send(target, true); });
  }

  // ---- Layouts --------------------------------------------------------------------

  [[noreturn]] void refuse_plain_in_sharded_store(std::string_view collection) const {
    throw Error(ErrorCode::kFailedPrecondition,
                "collection " + quoted(collection) + " at " + seed.address() +
                    " is in LlamaIndex's Redis layout (one hash), but this store was opened "
                    "with shards=" +
                    std::to_string(options.shards) +
                    " (kvdex's sharded layout); open it without ?shards");
  }

  // The sharded collection's shards; nullopt if the collection does not exist (and
  // `create` is false). Refuses a collection in LlamaIndex's layout or a foreign key.
  std::optional<std::shared_ptr<const ShardedCollection>> sharded(std::string_view collection,
                                                                  bool create) {
    {
      MutexLock lock(mu);
      const auto found = sharded_collections.find(std::string(collection));
      if (found != sharded_collections.end()) return found->second;
    }
    for (int attempt = 0; attempt < 3; ++attempt) {
      detail::RedisReplyPtr reply = raw_command(collection, {"GET", collection});
      std::optional<int> shards;
      if (reply->type == REDIS_REPLY_STRING) {
        shards = redis::parse_sharded_marker(detail::reply_text(reply.get()), collection);
        if (!shards) {
          throw Error(ErrorCode::kFailedPrecondition,
                      "collection " + quoted(collection) + " at " + seed.address() +
                          " is a Redis string that kvdex did not write, not a kvdex "
                          "sharded collection");
        }
      } else if (reply->type == REDIS_REPLY_ERROR) {
        const std::string_view text = detail::reply_text(reply.get());
        if (text.starts_with("WRONGTYPE")) refuse_plain_in_sharded_store(collection);
        detail::throw_reply_error(text, seed.address(),
                                  "GET of collection marker " + quoted(collection));
      } else if (reply->type != REDIS_REPLY_NIL) {
        throw Error(ErrorCode::kInternal, "unexpected reply to GET " + quoted(collection));
      }
      if (!shards) {
        if (!create) return std::nullopt;
        if (options.read_only)
          throw Error(ErrorCode::kNotSupported,
                      "the Redis store at " + seed.address() + " was opened read-only");
        detail::RedisReplyPtr set = raw_command(
            collection, {"SET", collection, redis::sharded_marker_value(options.shards), "NX"});
        if (set->type == REDIS_REPLY_ERROR)
          detail::throw_reply_error(detail::reply_text(set.get()), seed.address(),
                                    "SET of collection marker " + quoted(collection));
        if (set->type == REDIS_REPLY_NIL) continue;  // another writer created it: read its N
        shards = options.shards;
      }
      auto made = std::make_shared<ShardedCollection>();
      made->shards = *shards;
      for (int s = 0; s < *shards; ++s)
        made->hash_names.push_back(redis::shard_hash_name(collection, s, *shards));
      MutexLock lock(mu);
      return sharded_collections.emplace(std::string(collection), std::move(made)).first->second;
    }
    throw Error(ErrorCode::kInternal, "the marker of collection " + quoted(collection) +
                                          " appeared and disappeared three times");
  }

  // In LlamaIndex's layout, WRONGTYPE on a collection may mean it is a sharded one:
  // say so by name.
  template <class Fn, class AskFn>
  auto plain(std::string_view collection, Fn&& fn, AskFn&& ask)
      -> decltype(fn(std::declval<Node&>())) {
    try {
      return with_routing(collection, fn, ask);
    } catch (const Error& error) {
      if (error.code() != ErrorCode::kFailedPrecondition) throw;
      detail::RedisReplyPtr reply = raw_command(collection, {"GET", collection});
      if (reply->type != REDIS_REPLY_STRING) throw;
      const std::optional<int> shards =
          redis::parse_sharded_marker(detail::reply_text(reply.get()), collection);
      if (!shards) throw;
      throw Error(ErrorCode::kFailedPrecondition,
                  "collection " + quoted(collection) + " at " + seed.address() +
                      " is in kvdex's sharded layout (" + std::to_string(*shards) +
                      " shards), which LlamaIndex cannot read; open the store with ?shards=" +
                      std::to_string(*shards));
    }
  }

  void check_writable() const {
    if (options.read_only)
      throw Error(ErrorCode::kNotSupported,
                  "the Redis store at " + seed.address() + " was opened read-only");
  }

  std::vector<std::shared_ptr<Node>> master_nodes() {
    if (!options.cluster) return {node(seed)};
    std::vector<ClusterNode> addresses;
    for (int attempt = 0; attempt < 2 && addresses.empty(); ++attempt) {
      std::uint64_t seen = 0;
      {
        MutexLock lock(mu);
        addresses = map.masters();
        seen = generation;
      }
      if (addresses.empty()) refresh(seen);
    }
    std::vector<std::shared_ptr<Node>> result;
    for (const ClusterNode& address : addresses) result.push_back(node(address));
    return result;
  }

  const RedisOptions options;
  const ClusterNode seed;
  std::atomic<std::uint64_t> refreshes{0};
  Mutex refresh_mu KVDEX_ACQUIRED_BEFORE(mu);
  Mutex mu;
  ClusterSlotMap map KVDEX_GUARDED_BY(mu);
  std::uint64_t generation KVDEX_GUARDED_BY(mu) = 0;
  std::map<ClusterNode, std::shared_ptr<Node>> nodes KVDEX_GUARDED_BY(mu);
  std::unordered_map<std::string, std::shared_ptr<const ShardedCollection>> sharded_collections
      KVDEX_GUARDED_BY(mu);
};

RedisClusterKVStore::RedisClusterKVStore(const RedisOptions& options) {
  RedisOptions checked = options;
  detail::check_redis_options(checked);
  if (checked.cluster && checked.db != 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "a Redis Cluster has database 0 only; the URI asks for database " +
                    std::to_string(checked.db));
  }
  impl_ = std::make_shared<Impl>(checked);
}

RedisClusterKVStore::~RedisClusterKVStore() { wait_for_pending_operations(); }

const RedisOptions& RedisClusterKVStore::options() const noexcept { return impl_->options; }

std::uint64_t RedisClusterKVStore::slot_map_refreshes() const noexcept {
  return impl_->refreshes.load(std::memory_order_relaxed);
}

std::vector<std::string> RedisClusterKVStore::masters() {
  std::vector<std::string> result;
  for (const auto& node : impl_->master_nodes()) result.push_back(node->address.address());
  return result;
}

std::uint64_t RedisClusterKVStore::connections_opened() const {
  MutexLock lock(impl_->mu);
  std::uint64_t total = 0;
  for (const auto& [address, node] : impl_->nodes)
    total += node->store->connections_opened() + node->raw->connections_opened();
  return total;
}

// ---- Writes ---------------------------------------------------------------------------

void RedisClusterKVStore::write(const WriteBatch& batch) {
  impl_->check_writable();
  if (batch.empty()) return;
  // Regroup by the hash each op lands in, then by slot: a transaction stays in one slot.
  std::map<int, WriteBatch> per_slot;
  std::map<int, std::string> slot_key;
  for (const auto& op : batch.ops()) {
    const std::string& collection = batch.collection_of(op);
    std::string hash = collection;
    if (impl_->options.shards > 0) {
      const auto layout = impl_->sharded(collection, op.value.has_value());
      if (!layout) continue;  // a remove from a collection that does not exist
      hash = (*layout)->hash_names[static_cast<std::size_t>(
          redis::shard_of_key(op.key, (*layout)->shards))];
    }
    const int slot = impl_->options.cluster ? redis::key_hash_slot(hash) : 0;
    WriteBatch& part = per_slot[slot];
    slot_key.emplace(slot, hash);
    if (op.value) {
      part.put(hash, op.key, *op.value);
    } else {
      part.remove(hash, op.key);
    }
  }
  for (const auto& entry : per_slot) {
    const WriteBatch& part = entry.second;
    const std::string& key = slot_key[entry.first];
    const auto run = [&](Node& target) { target.store->write(part); };
    const auto ask = [&](Node& target) { impl_->ask_write(target, part); };
    if (impl_->options.shards > 0) {
      impl_->with_routing(key, run, ask);
    } else {
      impl_->plain(key, run, ask);
    }
  }
}

namespace {

// Waits for every future; returns the indexes whose operation failed with a redirection
// or an unreachable node (to be redone synchronously, with routing), rethrows the
// first other error after all completed.
template <class T>
std::vector<std::size_t> wait_all(std::vector<Future<T>>& futures,
                                  std::vector<std::optional<T>>* values) {
  std::vector<std::size_t> redo;
  std::exception_ptr first_error;
  for (std::size_t i = 0; i < futures.size(); ++i) {
    try {
      if constexpr (std::is_void_v<T>) {
        futures[i].get();
      } else {
        (*values)[i].emplace(futures[i].get());
      }
    } catch (const ClusterRedirectError&) {
      redo.push_back(i);
    } catch (const Error& error) {
      if (error.code() == ErrorCode::kUnavailable) {
        redo.push_back(i);
      } else if (!first_error) {
        first_error = std::current_exception();
      }
    }
  }
  if (first_error) std::rethrow_exception(first_error);
  return redo;
}

}  // namespace

void RedisClusterKVStore::put_all_encoded(std::span<const EncodedKeyValue> pairs,
                                          std::string_view collection, int batch_size) {
  check_batch_size(batch_size);
  impl_->check_writable();
  if (pairs.empty()) return;
  if (impl_->options.shards == 0) {
    impl_->plain(
        collection,
        [&](Node& target) { target.store->put_all_encoded(pairs, collection, batch_size); },
        [&](Node& target) { impl_->ask_put_all(target, pairs, collection, batch_size); });
    return;
  }
  for (const auto& [key, value] : pairs) detail::check_name(key, "key");
  const auto layout = *impl_->sharded(collection, true);
  std::vector<std::vector<EncodedKeyValue>> per_shard(static_cast<std::size_t>(layout->shards));
  for (const auto& pair : pairs)
    per_shard[static_cast<std::size_t>(redis::shard_of_key(pair.first, layout->shards))].push_back(
        pair);
  // Every shard at once, each on its node's async connections.
  std::vector<Future<void>> futures;
  std::vector<std::size_t> shard_of_future;
  for (std::size_t s = 0; s < per_shard.size(); ++s) {
    if (per_shard[s].empty()) continue;
    std::uint64_t seen = 0;
    std::shared_ptr<Node> target = impl_->route(layout->hash_names[s], &seen);
    futures.push_back(
        target->store->aput_all_encoded(per_shard[s], layout->hash_names[s], batch_size));
    shard_of_future.push_back(s);
  }
  for (const std::size_t i : wait_all<void>(futures, nullptr)) {
    const std::size_t s = shard_of_future[i];
    const std::string& hash = layout->hash_names[s];
    impl_->with_routing(
        hash, [&](Node& target) { target.store->put_all_encoded(per_shard[s], hash, batch_size); },
        [&](Node& target) { impl_->ask_put_all(target, per_shard[s], hash, batch_size); });
  }
}

bool RedisClusterKVStore::remove(std::string_view key, std::string_view collection) {
  impl_->check_writable();
  if (impl_->options.shards == 0) {
    return impl_->plain(
        collection, [&](Node& target) { return target.store->remove(key, collection); },
        [&](Node& target) { return impl_->ask_remove(target, collection, key); });
  }
  const auto layout = impl_->sharded(collection, false);
  if (!layout) return false;
  const std::string& hash =
      (*layout)->hash_names[static_cast<std::size_t>(redis::shard_of_key(key, (*layout)->shards))];
  return impl_->with_routing(
      hash, [&](Node& target) { return target.store->remove(key, hash); },
      [&](Node& target) { return impl_->ask_remove(target, hash, key); });
}

// ---- Reads ----------------------------------------------------------------------------

std::optional<EncodedValue> RedisClusterKVStore::get_encoded(std::string_view key,
                                                             std::string_view collection) {
  if (impl_->options.shards == 0) {
    return impl_->plain(
        collection, [&](Node& target) { return target.store->get_encoded(key, collection); },
        [&](Node& target) { return impl_->ask_get(target, collection, key); });
  }
  const auto layout = impl_->sharded(collection, false);
  if (!layout) return std::nullopt;
  const std::string& hash =
      (*layout)->hash_names[static_cast<std::size_t>(redis::shard_of_key(key, (*layout)->shards))];
  return impl_->with_routing(
      hash, [&](Node& target) { return target.store->get_encoded(key, hash); },
      [&](Node& target) { return impl_->ask_get(target, hash, key); });
}

namespace {

// get_all of one hash through scan (the ASK path): HSCAN may repeat a field, the last
// one wins.
std::vector<EncodedKeyValue> collect(const std::function<void(const ScanVisitor&)>& scan) {
  std::vector<EncodedKeyValue> out;
  std::unordered_map<std::string, std::size_t> seen;
  scan([&](std::string_view key, std::string_view text) {
    EncodedValue value = EncodedValue::adopt_canonical(text, nullptr);
    auto [it, inserted] = seen.try_emplace(std::string(key), out.size());
    if (inserted) {
      out.emplace_back(it->first, std::move(value));
    } else {
      out[it->second].second = std::move(value);
    }
  });
  return out;
}

}  // namespace

std::vector<EncodedKeyValue> RedisClusterKVStore::get_all_encoded(std::string_view collection) {
  if (impl_->options.shards == 0) {
    return impl_->plain(
        collection, [&](Node& target) { return target.store->get_all_encoded(collection); },
        [&](Node& target) {
          return collect(
              [&](const ScanVisitor& visit) { impl_->ask_scan(target, collection, visit); });
        });
  }
  const auto layout = impl_->sharded(collection, false);
  if (!layout) return {};
  const auto& names = (*layout)->hash_names;
  // Every shard at once: one HSCAN chain per shard on its node's async connections.
  std::vector<Future<std::vector<EncodedKeyValue>>> futures;
  for (const std::string& hash : names) {
    std::uint64_t seen = 0;
    futures.push_back(impl_->route(hash, &seen)->store->aget_all_encoded(hash));
  }
  std::vector<std::optional<std::vector<EncodedKeyValue>>> parts(names.size());
  for (const std::size_t i : wait_all(futures, &parts)) {
    const std::string& hash = names[i];
    parts[i].emplace(impl_->with_routing(
        hash, [&](Node& target) { return target.store->get_all_encoded(hash); },
        [&](Node& target) {
          return collect([&](const ScanVisitor& visit) { impl_->ask_scan(target, hash, visit); });
        }));
  }
  std::size_t total = 0;
  for (const auto& part : parts) total += part->size();
  std::vector<EncodedKeyValue> out;
  out.reserve(total);
  for (auto& part : parts) std::move(part->begin(), part->end(), std::back_inserter(out));
  return out;
}

void RedisClusterKVStore::scan(std::string_view collection, const ScanVisitor& visit) {
  // A redirection restarts a hash's scan: a key may then be visited twice, as HSCAN
  // itself allows.
  if (impl_->options.shards == 0) {
    impl_->plain(
        collection, [&](Node& target) { target.store->scan(collection, visit); },
        [&](Node& target) { impl_->ask_scan(target, collection, visit); });
    return;
  }
  const auto layout = impl_->sharded(collection, false);
  if (!layout) return;
  for (const std::string& hash : (*layout)->hash_names) {
    impl_->with_routing(
        hash, [&](Node& target) { target.store->scan(hash, visit); },
        [&](Node& target) { impl_->ask_scan(target, hash, visit); });
  }
}

std::uint64_t RedisClusterKVStore::count(std::string_view collection) {
  if (impl_->options.shards == 0) {
    return impl_->plain(
        collection, [&](Node& target) { return target.store->count(collection); },
        [&](Node& target) { return impl_->ask_count(target, collection); });
  }
  const auto layout = impl_->sharded(collection, false);
  if (!layout) return 0;
  std::uint64_t total = 0;
  for (const std::string& hash : (*layout)->hash_names) {
    total += impl_->with_routing(
        hash, [&](Node& target) { return target.store->count(hash); },
        [&](Node& target) { return impl_->ask_count(target, hash); });
  }
  return total;
}

std::vector<std::string> RedisClusterKVStore::collections() {
  std::set<std::string> names;
  for (const auto& node : impl_->master_nodes()) {
    for (std::string& name : node->store->collections()) {
      const bool shard = name.starts_with(redis::kShardHashPrefix);
      if (impl_->options.shards == 0 && !shard) {
        names.insert(std::move(name));
      } else if (impl_->options.shards > 0 && shard) {
        names.insert(name.substr(name.find('}') + 1));
      }
    }
  }
  return {names.begin(), names.end()};
}

// ---- Asynchronous ---------------------------------------------------------------------
//
// In LlamaIndex's layout an operation is the node store's own asynchronous operation;
// if it fails with a redirection or an unreachable node, it is redone synchronously,
// with routing, on the executor. Sharded operations that fan out run on the executor
// and use the node stores' asynchronous operations from there.

namespace {

// Completes with `first`'s result, unless it failed with a redirection or an
// unreachable node on a cluster: then `redo` (the synchronous call, with routing) runs on
// the executor and completes it. `token` is the store's PendingOperation, released
// before the result is published.
template <class T>
Future<T> with_fallback(Executor& executor, Future<T> first, std::function<T()> redo, bool cluster,
                        std::shared_ptr<void> token) {
  using Stored = std::conditional_t<std::is_void_v<T>, bool, T>;
  auto promise = std::make_shared<Promise<T>>();
  Future<T> result = promise->future();
  first.on_ready([&executor, first, promise, redo = std::move(redo), cluster,
                  token = std::move(token)]() mutable {
    std::exception_ptr error;
    std::optional<Stored> value;
    bool reroute = false;
    try {
      if constexpr (std::is_void_v<T>) {
        first.get();
        value.emplace(true);
      } else {
        value.emplace(first.get());
      }
    } catch (const ClusterRedirectError&) {
      error = std::current_exception();
      reroute = cluster;
    } catch (const Error& failure) {
      error = std::current_exception();
      reroute = cluster && failure.code() == ErrorCode::kUnavailable;
    } catch (...) {
      error = std::current_exception();
    }
    if (reroute) {
      executor.submit([promise, redo = std::move(redo), token = std::move(token)]() mutable {
        std::exception_ptr redo_error;
        std::optional<Stored> redone;
        try {
          if constexpr (std::is_void_v<T>) {
            redo();
            redone.emplace(true);
          } else {
            redone.emplace(redo());
          }
        } catch (...) {
          redo_error = std::current_exception();
        }
        token.reset();
        if (redo_error) {
          promise->set_error(redo_error);
        } else if constexpr (std::is_void_v<T>) {
          promise->set_value();
        } else {
          promise->set_value(std::move(*redone));
        }
      });
      return;
    }
    token.reset();
    if (error) {
      promise->set_error(error);
    } else if constexpr (std::is_void_v<T>) {
      promise->set_value();
    } else {
      promise->set_value(std::move(*value));
    }
  });
  return result;
}

}  // namespace

Future<void> RedisClusterKVStore::aput_all_encoded(std::vector<EncodedKeyValue> pairs,
                                                   std::string collection, int batch_size) {
  check_batch_size(batch_size);
  impl_->check_writable();
  if (impl_->options.shards > 0 || pairs.empty()) {
    auto shared = std::make_shared<std::vector<EncodedKeyValue>>(std::move(pairs));
    return run_pending([this, shared, collection = std::move(collection), batch_size] {
      put_all_encoded(*shared, collection, batch_size);
    });
  }
  std::uint64_t seen = 0;
  std::shared_ptr<Node> target = impl_->route(collection, &seen);
  auto shared = std::make_shared<std::vector<EncodedKeyValue>>(std::move(pairs));
  Future<void> first = target->store->aput_all_encoded(*shared, collection, batch_size);
  auto token = std::make_shared<PendingOperation>(begin_pending_operation());
  return with_fallback<void>(
      executor(), std::move(first),
      [this, shared, collection, batch_size] { put_all_encoded(*shared, collection, batch_size); },
      impl_->options.cluster, token);
}

Future<std::optional<EncodedValue>> RedisClusterKVStore::aget_encoded(std::string key,
                                                                      std::string collection) {
  std::string hash = collection;
  if (impl_->options.shards > 0) {
    std::shared_ptr<const ShardedCollection> layout;
    {
      MutexLock lock(impl_->mu);
      const auto found = impl_->sharded_collections.find(collection);
      if (found != impl_->sharded_collections.end()) layout = found->second;
    }
    if (!layout) {
      return run_pending([this, key = std::move(key), collection = std::move(collection)] {
        return get_encoded(key, collection);
      });
    }
    hash = layout->hash_names[static_cast<std::size_t>(redis::shard_of_key(key, layout->shards))];
  }
  std::uint64_t seen = 0;
  std::shared_ptr<Node> target = impl_->route(hash, &seen);
  Future<std::optional<EncodedValue>> first = target->store->aget_encoded(key, hash);
  auto token = std::make_shared<PendingOperation>(begin_pending_operation());
  return with_fallback<std::optional<EncodedValue>>(
      executor(), std::move(first),
      [this, key = std::move(key), collection = std::move(collection)] {
        return get_encoded(key, collection);
      },
      impl_->options.cluster, token);
}

Future<std::vector<EncodedKeyValue>> RedisClusterKVStore::aget_all_encoded(std::string collection) {
  if (impl_->options.shards > 0) {
    return run_pending(
        [this, collection = std::move(collection)] { return get_all_encoded(collection); });
  }
  std::uint64_t seen = 0;
  std::shared_ptr<Node> target = impl_->route(collection, &seen);
  Future<std::vector<EncodedKeyValue>> first = target->store->aget_all_encoded(collection);
  auto token = std::make_shared<PendingOperation>(begin_pending_operation());
  return with_fallback<std::vector<EncodedKeyValue>>(
      executor(), std::move(first),
      [this, collection = std::move(collection)] { return get_all_encoded(collection); },
      impl_->options.cluster, token);
}

}  // namespace kvdex
