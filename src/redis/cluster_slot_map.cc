#include "redis/cluster_slot_map.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <set>

#include "kvdex/error.h"

namespace kvdex::redis {
namespace {

[[noreturn]] void throw_malformed(const ClusterNode& node, const std::string& what) {
  throw Error(ErrorCode::kInternal,
              "malformed CLUSTER SLOTS reply from " + node.address() + ": " + what);
}

std::optional<long long> parse_integer(std::string_view text) {
  long long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

bool is_valid_slot(long long slot) { return slot >= 0 && slot < kClusterSlotCount; }

// One node entry of a slot range: [host, port, id, ...]. nullopt for an endpoint the
// reply marks as unknown ("?").
std::optional<ClusterNode> parse_node_entry(const redisReply& entry, const ClusterNode& queried) {
  if (entry.type != REDIS_REPLY_ARRAY || entry.elements < 2) {
    throw_malformed(queried, "a node entry is not an array of [host, port, ...]");
  }
  const redisReply& host = *entry.element[0];
  const redisReply& port = *entry.element[1];
  ClusterNode node;
  if (host.type == REDIS_REPLY_NIL) {
    node.host = queried.host;
  } else if (host.type == REDIS_REPLY_STRING) {
    node.host.assign(host.str, host.len);
    if (node.host == "?") return std::nullopt;
    if (node.host.empty()) node.host = queried.host;
  } else {
    throw_malformed(queried, "a node's host is neither a string nor nil");
  }
  if (port.type != REDIS_REPLY_INTEGER || port.integer < 1 || port.integer > 65535) {
    throw_malformed(queried, "a node's port is not an integer in 1..65535");
  }
  node.port = static_cast<int>(port.integer);
  return node;
}

}  // namespace

std::string ClusterNode::address() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::optional<ClusterNode> parse_node_address(std::string_view text, const ClusterNode& sender) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::optional<long long> port = parse_integer(text.substr(colon + 1));
  if (!port || *port < 1 || *port > 65535) return std::nullopt;
  return ClusterNode{host.empty() ? sender.host : std::string(host), static_cast<int>(*port)};
}

ClusterSlotMap::ClusterSlotMap() : slot_owner_(kClusterSlotCount, -1) {}

ClusterSlotMap ClusterSlotMap::from_cluster_slots_reply(const redisReply& reply,
                                                        const ClusterNode& queried) {
  if (reply.type == REDIS_REPLY_ERROR) {
    throw Error(ErrorCode::kFailedPrecondition,
                "CLUSTER SLOTS failed on " + queried.address() +
                    " (is it a Redis Cluster node?): " + std::string(reply.str, reply.len));
  }
  if (reply.type != REDIS_REPLY_ARRAY) throw_malformed(queried, "the reply is not an array");
  ClusterSlotMap map;
  for (std::size_t i = 0; i < reply.elements; ++i) {
    const redisReply& range = *reply.element[i];
    if (range.type != REDIS_REPLY_ARRAY || range.elements < 3 ||
        range.element[0]->type != REDIS_REPLY_INTEGER ||
        range.element[1]->type != REDIS_REPLY_INTEGER) {
      throw_malformed(queried, "range " + std::to_string(i) +
                                   " is not [first slot, last slot, master, replicas...]");
    }
    const long long first = range.element[0]->integer;
    const long long last = range.element[1]->integer;
    if (!is_valid_slot(first) || !is_valid_slot(last) || first > last) {
      throw_malformed(queried, "range " + std::to_string(i) + " has slots " +
                                   std::to_string(first) + ".." + std::to_string(last));
    }
    std::optional<ClusterNode> master = parse_node_entry(*range.element[2], queried);
    if (!master) continue;
    SlotRange parsed{static_cast<int>(first), static_cast<int>(last), *master, {}};
    for (std::size_t r = 3; r < range.elements; ++r) {
      if (std::optional<ClusterNode> replica = parse_node_entry(*range.element[r], queried)) {
        parsed.replicas.push_back(std::move(*replica));
      }
    }
    const std::int16_t owner = static_cast<std::int16_t>(map.index_of_node(parsed.master));
    std::fill(map.slot_owner_.begin() + first, map.slot_owner_.begin() + last + 1, owner);
    map.ranges_.push_back(std::move(parsed));
  }
  return map;
}

int ClusterSlotMap::index_of_node(const ClusterNode& node) {
  const auto found = std::find(nodes_.begin(), nodes_.end(), node);
  if (found != nodes_.end()) return static_cast<int>(found - nodes_.begin());
  nodes_.push_back(node);
  return static_cast<int>(nodes_.size()) - 1;
}

const ClusterNode* ClusterSlotMap::master_for_slot(int slot) const {
  if (!is_valid_slot(slot)) return nullptr;
  const std::int16_t owner = slot_owner_[static_cast<std::size_t>(slot)];
  return owner < 0 ? nullptr : &nodes_[static_cast<std::size_t>(owner)];
}

void ClusterSlotMap::assign_slot(int slot, const ClusterNode& master) {
  if (!is_valid_slot(slot)) return;
  slot_owner_[static_cast<std::size_t>(slot)] = static_cast<std::int16_t>(index_of_node(master));
}

std::vector<ClusterNode> ClusterSlotMap::masters() const {
  std::set<ClusterNode> serving;
  for (const std::int16_t owner : slot_owner_) {
    if (owner >= 0) serving.insert(nodes_[static_cast<std::size_t>(owner)]);
  }
  return {serving.begin(), serving.end()};
}

std::vector<ClusterNode> ClusterSlotMap::known_nodes() const {
  std::set<ClusterNode> known(nodes_.begin(), nodes_.end());
  for (const SlotRange& range : ranges_) known.insert(range.replicas.begin(), range.replicas.end());
  return {known.begin(), known.end()};
}

bool ClusterSlotMap::covers_all_slots() const {
  return std::none_of(slot_owner_.begin(), slot_owner_.end(),
                      [](std::int16_t owner) { return owner < 0; });
}

std::optional<ClusterRedirect> parse_cluster_redirect(std::string_view error_text,
                                                      const ClusterNode& sender) {
  ClusterRedirect redirect;
  std::string_view rest;
  if (error_text.starts_with("MOVED ")) {
    redirect.kind = ClusterRedirect::Kind::kMoved;
    rest = error_text.substr(6);
  } else if (error_text.starts_with("ASK ")) {
    redirect.kind = ClusterRedirect::Kind::kAsk;
    rest = error_text.substr(4);
  } else {
    return std::nullopt;
  }
  const auto malformed = [&]() {
    return Error(ErrorCode::kInternal, "malformed cluster redirection from " + sender.address() +
                                           ": '" + shorten_for_message(error_text) + "'");
  };
  const std::size_t space = rest.find(' ');
  if (space == std::string_view::npos) throw malformed();
  const std::optional<long long> slot = parse_integer(rest.substr(0, space));
  if (!slot || !is_valid_slot(*slot)) throw malformed();
  std::optional<ClusterNode> target = parse_node_address(rest.substr(space + 1), sender);
  if (!target) throw malformed();
  redirect.slot = static_cast<int>(*slot);
  redirect.target = std::move(*target);
  return redirect;
}

}  // namespace kvdex::redis
