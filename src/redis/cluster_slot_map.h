// The slot map of a Redis Cluster: which master serves each of the 16384 hash slots,
// parsed from a `CLUSTER SLOTS` reply, and the `MOVED`/`ASK` redirections a node answers
// with when a key's slot is served elsewhere.
//
// Thread safety: ClusterSlotMap is a value; const member functions may run concurrently,
// mutation needs external synchronisation (the store swaps whole maps under its lock).
// Errors: parsing throws kvdex::Error — kFailedPrecondition when the node answered with
// an error (e.g. cluster support disabled), kInternal when the reply does not have the
// shape the Redis protocol documents (the message names the node and what was wrong).
#ifndef KVDEX_SRC_REDIS_CLUSTER_SLOT_MAP_H_
#define KVDEX_SRC_REDIS_CLUSTER_SLOT_MAP_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kvdex/error.h"
#include "redis/hash_slot.h"

struct redisReply;

namespace kvdex::redis {

// A node's address as clients connect to it.
struct ClusterNode {
  std::string host;
  int port = 0;

  // "host:port", or "[host]:port" for an IPv6 literal: the form error messages use.
  std::string address() const;
  friend bool operator==(const ClusterNode&, const ClusterNode&) = default;
  friend auto operator<=>(const ClusterNode&, const ClusterNode&) = default;
};

// Parses "host:port" (the port after the last ':', so IPv6 literals work; "[::1]:7000"
// too). An empty host means "the node that sent it" (Redis 7 writes ":port" when a node
// does not know its own address), so `sender.host` is used. nullopt when the text is
// not an address with a port in 1..65535.
std::optional<ClusterNode> parse_node_address(std::string_view text, const ClusterNode& sender);

// One contiguous range of slots and the nodes that serve it.
struct SlotRange {
  int first_slot = 0;
  int last_slot = 0;  // inclusive, as CLUSTER SLOTS reports it
  ClusterNode master;
  std::vector<ClusterNode> replicas;
};

class ClusterSlotMap {
 public:
  // An empty map: no slot has a master.
  ClusterSlotMap();

  // The map a `CLUSTER SLOTS` reply describes. `queried` is the node the command was
  // sent to: a NULL or empty host in the reply means that node's host (the
  // specification's rule for nodes whose endpoint is unknown to themselves). Ranges
  // whose master endpoint is "?" (unknown, cluster-preferred-endpoint-type) are left
  // unassigned, so commands for them are sent to any node and redirected.
  static ClusterSlotMap from_cluster_slots_reply(const redisReply& reply,
                                                 const ClusterNode& queried);

  // The master serving `slot` (0..16383), or nullptr if the map assigns it to none.
  const ClusterNode* master_for_slot(int slot) const;
  const ClusterNode* master_for_key(std::string_view key) const {
    return master_for_slot(key_hash_slot(key));
  }

  // Records that `slot` is now served by `master` (a MOVED redirection), without
  // refetching the whole map.
  void assign_slot(int slot, const ClusterNode& master);

  // Every distinct master that serves at least one slot, sorted by address.
  std::vector<ClusterNode> masters() const;
  // Every node the map names, masters and replicas: where to ask for a new map when
  // the known masters are gone.
  std::vector<ClusterNode> known_nodes() const;
  // The ranges as parsed (for diagnostics and tests); assign_slot does not change them.
  const std::vector<SlotRange>& ranges() const { return ranges_; }
  // True if every slot has a master (a cluster in state ok).
  bool covers_all_slots() const;

 private:
  int index_of_node(const ClusterNode& node);

  std::vector<SlotRange> ranges_;
  std::vector<ClusterNode> nodes_;        // masters, indexed by slot_owner_
  std::vector<std::int16_t> slot_owner_;  // per slot: index into nodes_, -1 if none
};

// A redirection a cluster node answers with instead of executing a command.
struct ClusterRedirect {
  enum class Kind {
    kMoved,  // the slot now lives on `target` for good: update the map
    kAsk,    // the slot is being migrated: send this one command to `target` after ASKING
  };
  Kind kind = Kind::kMoved;
  int slot = 0;
  ClusterNode target;
};

// The redirection in an error reply's text ("MOVED 3999 127.0.0.1:6381",
// "ASK 3999 127.0.0.1:6381"), or nullopt when the error is not a redirection. `sender`
// is the node that answered (an empty host in the reply means its host). Throws
// Error(kInternal) when the text starts with MOVED or ASK but is malformed.
std::optional<ClusterRedirect> parse_cluster_redirect(std::string_view error_text,
                                                      const ClusterNode& sender);

// What a command answered with MOVED or ASK throws (detail::throw_reply_error), so the
// cluster store can follow it; its code is kInternal because a store that is not
// routing by slot (a plain RedisKVStore pointed at a cluster node) cannot.
class ClusterRedirectError : public Error {
 public:
  ClusterRedirectError(const std::string& message, std::string reply)
      : Error(ErrorCode::kInternal, message), reply_(std::move(reply)) {}
  // The server's error text, e.g. "MOVED 3999 127.0.0.1:6381".
  const std::string& reply() const noexcept { return reply_; }

 private:
  std::string reply_;
};

}  // namespace kvdex::redis

#endif  // KVDEX_SRC_REDIS_CLUSTER_SLOT_MAP_H_
