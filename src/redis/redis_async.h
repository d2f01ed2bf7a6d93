// The asynchronous layer: a process-wide set of event-loop threads (epoll) driving
// non-blocking hiredis connections through kvdex's own hiredis event adapter (the
// ac->ev hooks). Internal.
//
// A request is a run of RESP commands sent back to back on one connection (so a
// MULTI ... EXEC is never interleaved with another caller's commands); its replies
// come back in order on the loop thread, where on_reply and then on_done run. Many
// requests are in flight at once on one connection: that is the pipelining.
//
// Thread safety: submit() and shutdown() may be called from any thread, including
// from a loop thread inside a callback. Callbacks run on the connection's loop thread
// and must not block.
// Errors: a connection that fails completes each of its requests with
// Error(kUnavailable) naming host:port (kDeadlineExceeded for the connect and command
// timeouts); the next request reconnects.
#ifndef KVDEX_SRC_REDIS_REDIS_ASYNC_H_
#define KVDEX_SRC_REDIS_REDIS_ASYNC_H_

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kvdex/redis_kvstore.h"
#include "redis/redis_connection.h"

namespace kvdex::detail {

class RedisEventLoop;

struct AsyncRequest {
  // Appends one command.
  void add(std::initializer_list<std::string_view> args) {
    append_resp_command(commands, args);
    command_ends.push_back(commands.size());
  }
  void add(std::span<const std::string_view> args) {
    append_resp_command(commands, args);
    command_ends.push_back(commands.size());
  }

  std::string commands;                   // concatenated RESP
  std::vector<std::size_t> command_ends;  // end offset of each command in `commands`
  // Reply `index`, in order. May throw: the request then ends with that error once
  // its remaining replies have arrived.
  std::function<void(std::size_t index, const redisReply& reply)> on_reply;
  // Called exactly once: with nullptr after the last reply, or with the error.
  std::function<void(std::exception_ptr error)> on_done;

  // Owned by the connection.
  std::size_t replies_seen = 0;
  bool finished = false;
  std::exception_ptr error;
};

// One non-blocking connection, bound to one loop thread for life.
class AsyncRedisConnection : public std::enable_shared_from_this<AsyncRedisConnection> {
 public:
  // `max_bulk_length` is shared with the sync pool: the first connection of either
  // side stores the server's proto-max-bulk-len there.
  AsyncRedisConnection(RedisOptions options, std::string address, RedisEventLoop& loop,
                       std::shared_ptr<std::atomic<std::uint64_t>> opened);
  ~AsyncRedisConnection();

  void submit(std::shared_ptr<AsyncRequest> request);
  // Closes the connection (failing what is still in flight) on its loop thread, and
  // waits until it is closed unless called from a loop thread (a Future callback),
  // where waiting could deadlock two loops.
  void shutdown();

  // Loop-thread entry points (the adapter and the loop call these).
  void handle_events(std::uint32_t events);
  void check_deadlines(std::chrono::steady_clock::time_point now);
  void on_context_cleanup();
  void update_interest(std::uint32_t add, std::uint32_t remove);
  void on_connected(int status);
  void on_command_reply(std::shared_ptr<AsyncRequest>& request, redisReply* reply);

 private:
  void send(std::shared_ptr<AsyncRequest> request);
  bool connect();
  void fail(std::exception_ptr error);
  std::exception_ptr connection_error() const;

  const RedisOptions options_;
  const std::string address_;
  RedisEventLoop& loop_;
  std::shared_ptr<std::atomic<std::uint64_t>> opened_;
  // Loop thread only.
  redisAsyncContext* context_ = nullptr;
  int fd_ = -1;
  std::uint32_t interest_ = 0;
  bool registered_ = false;
  bool connecting_ = false;
  bool closed_ = false;
  std::size_t in_flight_ = 0;
  std::chrono::steady_clock::time_point connect_deadline_;
  std::chrono::steady_clock::time_point last_progress_;
  std::exception_ptr failure_;  // why the context is being freed, if we free it
};

// The process-wide loops (two threads), created on first use and never destroyed
// (recreated in a child after fork()). Connections are spread over them.
RedisEventLoop& redis_event_loop_for(std::size_t index);
bool on_redis_event_loop(const RedisEventLoop& loop);
// True on any of the loop threads.
bool on_any_redis_event_loop();
void post_to_redis_event_loop(RedisEventLoop& loop, std::function<void()> task);

}  // namespace kvdex::detail

#endif  // KVDEX_SRC_REDIS_REDIS_ASYNC_H_
