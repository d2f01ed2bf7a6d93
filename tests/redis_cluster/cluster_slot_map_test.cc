// The slot map and redirection parsers on replies written out in RESP, byte for byte
// as a server sends them (cluster_live_test.cc parses a live cluster's replies).
#include "redis/cluster_slot_map.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <memory>
#include <string>

#include "test_util.h"

namespace kvdex::redis {
namespace {

struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

// The reply hiredis builds from `resp`, as if a server had sent it.
ReplyPtr parse_resp(const std::string& resp) {
  redisReader* reader = redisReaderCreate();
  redisReaderFeed(reader, resp.data(), resp.size());
  void* reply = nullptr;
  const int status = redisReaderGetReply(reader, &reply);
  redisReaderFree(reader);
  EXPECT_EQ(status, REDIS_OK);
  EXPECT_NE(reply, nullptr) << "incomplete RESP in the test: " << resp;
  return ReplyPtr(static_cast<redisReply*>(reply));
}

std::string bulk(const std::string& text) {
  return "$" + std::to_string(text.size()) + "\r\n" + text + "\r\n";
}
std::string integer(long long value) { return ":" + std::to_string(value) + "\r\n"; }
std::string node(const std::string& host, int port, const std::string& id) {
  return "*3\r\n" + (host == "<nil>" ? std::string("$-1\r\n") : bulk(host)) + integer(port) +
         bulk(id);
}

const ClusterNode kQueried{"127.0.0.1", 7000};

TEST(ClusterSlotMap, ParsesThreeMastersWithReplicas) {
  const std::string resp =
      "*3\r\n"
      "*4\r\n" +
      integer(0) + integer(5460) + node("127.0.0.1", 7000, "a") + node("127.0.0.1", 7003, "d") +
      "*4\r\n" + integer(5461) + integer(10922) + node("127.0.0.1", 7001, "b") +
      node("127.0.0.1", 7004, "e") + "*3\r\n" + integer(10923) + integer(16383) +
      node("10.0.0.3", 7002, "c");
  const ClusterSlotMap map = ClusterSlotMap::from_cluster_slots_reply(*parse_resp(resp), kQueried);
  EXPECT_TRUE(map.covers_all_slots());
  ASSERT_NE(map.master_for_slot(0), nullptr);
  EXPECT_EQ(*map.master_for_slot(0), (ClusterNode{"127.0.0.1", 7000}));
  EXPECT_EQ(*map.master_for_slot(5460), (ClusterNode{"127.0.0.1", 7000}));
  EXPECT_EQ(*map.master_for_slot(5461), (ClusterNode{"127.0.0.1", 7001}));
  EXPECT_EQ(*map.master_for_slot(10922), (ClusterNode{"127.0.0.1", 7001}));
  EXPECT_EQ(*map.master_for_slot(10923), (ClusterNode{"10.0.0.3", 7002}));
  EXPECT_EQ(*map.master_for_slot(16383), (ClusterNode{"10.0.0.3", 7002}));
  EXPECT_EQ(map.master_for_slot(16384), nullptr);
  EXPECT_EQ(map.master_for_slot(-1), nullptr);
  // "foo" is in slot 12182.
  EXPECT_EQ(*map.master_for_key("foo"), (ClusterNode{"10.0.0.3", 7002}));
  EXPECT_EQ(map.masters().size(), 3u);
  EXPECT_EQ(map.known_nodes().size(), 5u);
  ASSERT_EQ(map.ranges().size(), 3u);
  ASSERT_EQ(map.ranges()[0].replicas.size(), 1u);
  EXPECT_EQ(map.ranges()[0].replicas[0], (ClusterNode{"127.0.0.1", 7003}));
}

TEST(ClusterSlotMap, NilOrEmptyHostMeansTheQueriedNodeAndQuestionMarkIsUnknown) {
  const std::string resp =
      "*3\r\n"
      "*3\r\n" +
      integer(0) + integer(99) + node("<nil>", 7005, "a") + "*3\r\n" + integer(100) + integer(199) +
      node("", 7006, "b") + "*3\r\n" + integer(200) + integer(299) + node("?", 7007, "c");
  const ClusterSlotMap map = ClusterSlotMap::from_cluster_slots_reply(*parse_resp(resp), kQueried);
  EXPECT_EQ(*map.master_for_slot(50), (ClusterNode{"127.0.0.1", 7005}));
  EXPECT_EQ(*map.master_for_slot(150), (ClusterNode{"127.0.0.1", 7006}));
  EXPECT_EQ(map.master_for_slot(250), nullptr);
  EXPECT_EQ(map.master_for_slot(300), nullptr);
  EXPECT_FALSE(map.covers_all_slots());
}

TEST(ClusterSlotMap, SplitRangesOfOneMasterAndAssignSlot) {
  const std::string resp =
      "*3\r\n"
      "*3\r\n" +
      integer(0) + integer(10) + node("127.0.0.1", 7000, "a") + "*3\r\n" + integer(11) +
      integer(16000) + node("127.0.0.1", 7001, "b") + "*3\r\n" + integer(16001) + integer(16383) +
      node("127.0.0.1", 7000, "a");
  ClusterSlotMap map = ClusterSlotMap::from_cluster_slots_reply(*parse_resp(resp), kQueried);
  EXPECT_TRUE(map.covers_all_slots());
  EXPECT_EQ(map.masters(), (std::vector<ClusterNode>{{"127.0.0.1", 7000}, {"127.0.0.1", 7001}}));
  map.assign_slot(12, ClusterNode{"127.0.0.1", 7009});
  EXPECT_EQ(*map.master_for_slot(12), (ClusterNode{"127.0.0.1", 7009}));
  EXPECT_EQ(*map.master_for_slot(13), (ClusterNode{"127.0.0.1", 7001}));
  EXPECT_EQ(map.masters().size(), 3u);
}

TEST(ClusterSlotMap, EmptyMapAndEmptyReply) {
  EXPECT_EQ(ClusterSlotMap().master_for_slot(0), nullptr);
  const ClusterSlotMap map =
      ClusterSlotMap::from_cluster_slots_reply(*parse_resp("*0\r\n"), kQueried);
  EXPECT_FALSE(map.covers_all_slots());
  EXPECT_TRUE(map.masters().empty());
}

TEST(ClusterSlotMap, ErrorReplyIsFailedPreconditionNamingTheNode) {
  try {
    ClusterSlotMap::from_cluster_slots_reply(
        *parse_resp("-ERR This instance has cluster support disabled\r\n"), kQueried);
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kFailedPrecondition);
    EXPECT_NE(std::string(error.what()).find("127.0.0.1:7000"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("cluster support disabled"), std::string::npos);
  }
}

TEST(ClusterSlotMap, MalformedRepliesAreInternalErrors) {
  const ClusterNode& q = kQueried;
  KVDEX_EXPECT_ERROR(ClusterSlotMap::from_cluster_slots_reply(*parse_resp("+OK\r\n"), q),
                     ErrorCode::kInternal);
  // Range without a master.
  KVDEX_EXPECT_ERROR(ClusterSlotMap::from_cluster_slots_reply(
                         *parse_resp("*1\r\n*2\r\n" + integer(0) + integer(5)), q),
                     ErrorCode::kInternal);
  // Slots out of range or reversed.
  KVDEX_EXPECT_ERROR(
      ClusterSlotMap::from_cluster_slots_reply(
          *parse_resp("*1\r\n*3\r\n" + integer(0) + integer(16384) + node("h", 1, "a")), q),
      ErrorCode::kInternal);
  KVDEX_EXPECT_ERROR(
      ClusterSlotMap::from_cluster_slots_reply(
          *parse_resp("*1\r\n*3\r\n" + integer(9) + integer(3) + node("h", 1, "a")), q),
      ErrorCode::kInternal);
  // Port outside 1..65535, host not a string.
  KVDEX_EXPECT_ERROR(
      ClusterSlotMap::from_cluster_slots_reply(
          *parse_resp("*1\r\n*3\r\n" + integer(0) + integer(3) + node("h", 70000, "a")), q),
      ErrorCode::kInternal);
  KVDEX_EXPECT_ERROR(ClusterSlotMap::from_cluster_slots_reply(
                         *parse_resp("*1\r\n*3\r\n" + integer(0) + integer(3) + "*2\r\n" +
                                     integer(5) + integer(7000)),
                         q),
                     ErrorCode::kInternal);
}

TEST(ClusterRedirect, ParsesMovedAndAsk) {
  const std::optional<ClusterRedirect> moved =
      parse_cluster_redirect("MOVED 3999 127.0.0.1:6381", kQueried);
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->kind, ClusterRedirect::Kind::kMoved);
  EXPECT_EQ(moved->slot, 3999);
  EXPECT_EQ(moved->target, (ClusterNode{"127.0.0.1", 6381}));

  const std::optional<ClusterRedirect> ask =
      parse_cluster_redirect("ASK 16383 10.1.2.3:7002", kQueried);
  ASSERT_TRUE(ask);
  EXPECT_EQ(ask->kind, ClusterRedirect::Kind::kAsk);
  EXPECT_EQ(ask->slot, 16383);
  EXPECT_EQ(ask->target, (ClusterNode{"10.1.2.3", 7002}));
}

TEST(ClusterRedirect, EmptyHostIsTheSenderAndIpv6Works) {
  EXPECT_EQ(parse_cluster_redirect("MOVED 0 :7004", kQueried)->target,
            (ClusterNode{"127.0.0.1", 7004}));
  const ClusterNode ipv6 = parse_cluster_redirect("MOVED 1 ::1:7001", kQueried)->target;
  EXPECT_EQ(ipv6, (ClusterNode{"::1", 7001}));
  EXPECT_EQ(ipv6.address(), "[::1]:7001");
  EXPECT_EQ(parse_cluster_redirect("ASK 1 [::1]:7001", kQueried)->target,
            (ClusterNode{"::1", 7001}));
}

TEST(ClusterRedirect, OtherErrorsAreNotRedirects) {
  EXPECT_FALSE(parse_cluster_redirect("ERR unknown command", kQueried));
  EXPECT_FALSE(parse_cluster_redirect("WRONGTYPE Operation against a key", kQueried));
  EXPECT_FALSE(parse_cluster_redirect("CLUSTERDOWN The cluster is down", kQueried));
  EXPECT_FALSE(parse_cluster_redirect("MOVEDX 1 h:1", kQueried));
  EXPECT_FALSE(parse_cluster_redirect("", kQueried));
}

TEST(ClusterRedirect, MalformedRedirectsAreInternalErrors) {
  for (const char* text : {"MOVED ", "MOVED 1", "MOVED x h:1", "MOVED 16384 h:1", "MOVED -1 h:1",
                           "ASK 1 h", "ASK 1 h:0", "ASK 1 h:65536", "ASK 1 h:12x"}) {
    KVDEX_EXPECT_ERROR(parse_cluster_redirect(text, kQueried), ErrorCode::kInternal);
  }
}

TEST(ClusterNode, ParseAddress) {
  EXPECT_EQ(parse_node_address("example.org:6379", kQueried), (ClusterNode{"example.org", 6379}));
  EXPECT_FALSE(parse_node_address("example.org", kQueried));
  EXPECT_FALSE(parse_node_address("example.org:", kQueried));
  EXPECT_EQ((ClusterNode{"127.0.0.1", 7000}).address(), "127.0.0.1:7000");
}

}  // namespace
}  // namespace kvdex::redis
