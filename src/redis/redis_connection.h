// Synchronous connections to one Redis server and their bounded pool, plus what every
// Redis code path shares: RESP command formatting, reply ownership, and the mapping
// of failures and error replies to kvdex error codes. Internal.
//
// Thread safety: a RedisConnection is used by one thread at a time (the pool hands
// it out exclusively); RedisConnectionPool is safe from many threads. The free
// functions are pure.
// Errors: Error(kUnavailable, "... host:port ...") when the server cannot be
// reached or the connection breaks; Error(kDeadlineExceeded) for timeouts; error
// replies are mapped by error_code_for_reply().
#ifndef KVDEX_SRC_REDIS_REDIS_CONNECTION_H_
#define KVDEX_SRC_REDIS_REDIS_CONNECTION_H_

#include <hiredis/hiredis.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kvdex/error.h"
#include "kvdex/redis_kvstore.h"
#include "kvdex/thread_annotations.h"

namespace kvdex::detail {

struct RedisReplyDeleter {
  void operator()(redisReply* reply) const noexcept { freeReplyObject(reply); }
};
using RedisReplyPtr = std::unique_ptr<redisReply, RedisReplyDeleter>;

inline std::string_view reply_text(const redisReply* reply) noexcept {
  return {reply->str, reply->len};
}

// Appends one command in RESP (what redisFormatCommandArgv writes): arguments are
// binary-safe, so names with CR/LF, spaces or NUL bytes are data, never syntax.
void append_resp_command(std::string& out, std::span<const std::string_view> args);
inline void append_resp_command(std::string& out, std::initializer_list<std::string_view> args) {
  append_resp_command(out, std::span<const std::string_view>(args.begin(), args.size()));
}

// The code an error reply means (see redis_kvstore.h): by its first word.
ErrorCode error_code_for_reply(std::string_view message) noexcept;

// Throws the Error for an error reply, e.g. "Redis at 127.0.0.1:6379 refused HSET on
// collection "docstore/data": OOM command not allowed ...".
[[noreturn]] void throw_reply_error(std::string_view message, std::string_view address,
                                    std::string_view context);

// One blocking hiredis connection, authenticated and on the configured database.
class RedisConnection {
 public:
  // Connects (connect_timeout), sets command_timeout, then AUTH and SELECT. Throws
  // kUnavailable / kDeadlineExceeded / kPermissionDenied naming the address.
  RedisConnection(const RedisOptions& options, std::string address);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Sends `commands` (concatenated RESP, `count` commands) and reads `count` replies.
  // A failure of the connection throws and marks it broken(); error replies are
  // returned, not thrown (the caller knows what each means).
  std::vector<RedisReplyPtr> pipeline(std::string_view commands, std::size_t count);
  RedisReplyPtr command(std::initializer_list<std::string_view> args);

  // Split pipelining: send() writes `count` commands to the socket without waiting;
  // read_reply() reads the oldest reply still owed. broken() is true while replies
  // are owed, so a connection abandoned between the two is never reused.
  void send(std::string_view commands, std::size_t count);
  RedisReplyPtr read_reply();

  // The connection failed (or a reply went unread): it must not be reused.
  bool broken() const noexcept { return broken_ || owed_ > 0; }
  const std::string& address() const noexcept { return address_; }

 private:
  void set_up(const RedisOptions& options);  // command timeout, AUTH, SELECT
  [[noreturn]] void fail(std::string_view doing);

  std::string address_;
  std::chrono::milliseconds command_timeout_;
  redisContext* context_ = nullptr;
  bool broken_ = false;
  std::size_t owed_ = 0;  // replies of send() not yet read
};

// At most `pool_size` connections to one server, opened on demand; callers wait
// when all are in use. Holds the retry policy (see redis_kvstore.h).
class RedisConnectionPool {
 public:
  explicit RedisConnectionPool(RedisOptions options);
  ~RedisConnectionPool();

  // Runs fn(RedisConnection&) on a pooled connection and returns its result. A
  // connection fn leaves broken() is discarded, with every idle one; if it had been
  // idle in the pool (the server may have restarted since), fn runs once more on a
  // new connection. fn must read every reply it asks for before it throws.
  template <class Fn>
  auto run(Fn&& fn) -> decltype(fn(std::declval<RedisConnection&>()));

  const std::string& address() const noexcept { return address_; }
  const RedisOptions& options() const noexcept { return options_; }
  // Closes the idle connections (those in use close when they come back after this).
  void close_idle() noexcept;
  // The server's proto-max-bulk-len (512 MiB if CONFIG GET is refused); read when the
  // first connection opens.
  std::int64_t max_bulk_length();
  // As max_bulk_length(), without connecting: 512 MiB until a connection read it.
  std::int64_t known_max_bulk_length() const noexcept;
  std::uint64_t connections_opened() const noexcept { return opened_.load(); }

 private:
  struct Lease {
    std::unique_ptr<RedisConnection> connection;
    bool reused = false;
  };
  Lease acquire();
  void release(std::unique_ptr<RedisConnection> connection);
  void discard() noexcept;  // a leased connection died: frees its slot, drops idle ones
  std::unique_ptr<RedisConnection> connect_with_retries();

  const RedisOptions options_;
  const std::string address_;
  std::atomic<std::uint64_t> opened_{0};
  std::atomic<std::int64_t> max_bulk_length_{-1};
  Mutex mu_;
  CondVar slot_freed_;
  std::vector<std::unique_ptr<RedisConnection>> idle_ KVDEX_GUARDED_BY(mu_);
  int in_use_ KVDEX_GUARDED_BY(mu_) = 0;
};

template <class Fn>
auto RedisConnectionPool::run(Fn&& fn) -> decltype(fn(std::declval<RedisConnection&>())) {
  for (int attempt = 0;; ++attempt) {
    Lease lease = acquire();
    try {
      if constexpr (std::is_void_v<decltype(fn(*lease.connection))>) {
        fn(*lease.connection);
        release(std::move(lease.connection));
        return;
      } else {
        auto result = fn(*lease.connection);
        release(std::move(lease.connection));
        return result;
      }
    } catch (const Error& error) {
      if (!lease.connection->broken()) {
        release(std::move(lease.connection));
        throw;
      }
      lease.connection.reset();
      discard();
      if (!(lease.reused && attempt == 0 && error.code() == ErrorCode::kUnavailable)) throw;
    } catch (...) {
      lease.connection.reset();
      discard();
      throw;
    }
  }
}

}  // namespace kvdex::detail

#endif  // KVDEX_SRC_REDIS_REDIS_CONNECTION_H_
