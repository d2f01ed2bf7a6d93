#include "redis/redis_connection.h"

#include <sys/time.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <thread>
#include <utility>

#include "kvdex/json.h"
#include "redis/cluster_slot_map.h"
#include "redis/redis_options.h"

namespace kvdex::detail {
namespace {

constexpr std::int64_t kDefaultMaxBulkLength = std::int64_t{512} << 20;

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv;
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

bool starts_with_word(std::string_view message, std::string_view word) {
  return message.starts_with(word) &&
         (message.size() == word.size() || message[word.size()] == ' ');
}

}  // namespace

void append_resp_command(std::string& out, std::span<const std::string_view> args) {
  std::size_t size = 16;
  for (std::string_view arg : args) size += arg.size() + 24;
  out.reserve(out.size() + size);
  out += '*';
  out += std::to_string(args.size());
  out += "\r\n";
  for (std::string_view arg : args) {
    out += '$';
    out += std::to_string(arg.size());
    out += "\r\n";
    out.append(arg);
    out += "\r\n";
  }
}

ErrorCode error_code_for_reply(std::string_view message) noexcept {
  if (starts_with_word(message, "NOAUTH") || starts_with_word(message, "WRONGPASS") ||
      starts_with_word(message, "NOPERM"))
    return ErrorCode::kPermissionDenied;
  if (starts_with_word(message, "OOM")) return ErrorCode::kResourceExhausted;
  if (starts_with_word(message, "WRONGTYPE") || starts_with_word(message, "READONLY"))
    return ErrorCode::kFailedPrecondition;
  if (starts_with_word(message, "LOADING") || starts_with_word(message, "MASTERDOWN") ||
      starts_with_word(message, "BUSY") || starts_with_word(message, "TRYAGAIN") ||
      starts_with_word(message, "CLUSTERDOWN"))
    return ErrorCode::kUnavailable;
  if (message.find("invalid bulk length") != std::string_view::npos ||
      message.find("invalid DB index") != std::string_view::npos ||
      message.find("DB index is out of range") != std::string_view::npos)
    return ErrorCode::kInvalidArgument;
  if (message.find("max request size") != std::string_view::npos ||
      message.find("string exceeds maximum allowed size") != std::string_view::npos)
    return ErrorCode::kInvalidArgument;
  return ErrorCode::kInternal;
}

void throw_reply_error(std::string_view message, std::string_view address,
                       std::string_view context) {
  std::string text = "Redis at " + std::string(address) + " refused " + std::string(context) +
                     ": " + shorten_for_message(message);
  if (starts_with_word(message, "WRONGTYPE"))
    text +=
        " (the collection's name is a Redis key that is not a hash, e.g. a collection in "
        "kvdex's sharded layout: open it with ?shards=N)";
  if (starts_with_word(message, "MOVED") || starts_with_word(message, "ASK")) {
    text += " (a Redis Cluster node: open the store with ?cluster=1)";
    throw redis::ClusterRedirectError(text, std::string(message));
  }
  throw Error(error_code_for_reply(message), text);
}

RedisConnection::RedisConnection(const RedisOptions& options, std::string address)
    : address_(std::move(address)), command_timeout_(options.command_timeout) {
  context_ = redisConnectWithTimeout(options.host.c_str(), options.port,
                                     to_timeval(options.connect_timeout));
  if (context_ == nullptr) throw Error(ErrorCode::kResourceExhausted, "out of memory");
  if (context_->err != 0) {
    const bool timed_out =
        context_->err == REDIS_ERR_IO && (errno == ETIMEDOUT || errno == EINPROGRESS);
    const std::string why = context_->errstr;
    redisFree(context_);
    context_ = nullptr;
    if (timed_out) {
      throw Error(ErrorCode::kDeadlineExceeded,
                  "Redis at " + address_ + " did not accept a connection within " +
                      std::to_string(options.connect_timeout.count()) + " ms");
    }
    throw Error(ErrorCode::kUnavailable, "Redis at " + address_ + " is unreachable: " + why);
  }
  try {
    set_up(options);
  } catch (...) {
    // A throwing constructor runs no destructor.
    redisFree(context_);
    context_ = nullptr;
    throw;
  }
}

void RedisConnection::set_up(const RedisOptions& options) {
  if (redisSetTimeout(context_, to_timeval(options.command_timeout)) != REDIS_OK)
    fail("setting the command timeout");
  std::string setup;
  std::size_t count = 0;
  if (!options.password.empty()) {
    if (options.user.empty()) {
      append_resp_command(setup, {"AUTH", options.password});
    } else {
      append_resp_command(setup, {"AUTH", options.user, options.password});
    }
    ++count;
  }
  const std::string db = std::to_string(options.db);
  if (options.db != 0) {
    append_resp_command(setup, {"SELECT", db});
    ++count;
  }
  if (count == 0) return;
  std::vector<RedisReplyPtr> replies = pipeline(setup, count);
  std::size_t i = 0;
  if (!options.password.empty()) {
    if (replies[i]->type == REDIS_REPLY_ERROR)
      throw_reply_error(reply_text(replies[i].get()), address_, "AUTH");
    ++i;
  }
  if (options.db != 0 && replies[i]->type == REDIS_REPLY_ERROR)
    throw_reply_error(reply_text(replies[i].get()), address_, "SELECT " + db);
}

RedisConnection::~RedisConnection() {
  if (context_ != nullptr) redisFree(context_);
}

void RedisConnection::fail(std::string_view doing) {
  broken_ = true;
  const int saved_errno = errno;
  std::string why = context_->errstr;
  if (context_->err == REDIS_ERR_IO && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK ||
                                        saved_errno == ETIMEDOUT || why == std::strerror(EAGAIN))) {
    throw Error(ErrorCode::kDeadlineExceeded, "Redis at " + address_ + " did not answer within " +
                                                  std::to_string(command_timeout_.count()) +
                                                  " ms (" + std::string(doing) + ")");
  }
  if (context_->err == REDIS_ERR_EOF) why = "the server closed the connection";
  throw Error(ErrorCode::kUnavailable,
              "Redis at " + address_ + " went away (" + std::string(doing) + "): " + why);
}

std::vector<RedisReplyPtr> RedisConnection::pipeline(std::string_view commands, std::size_t count) {
  if (broken_) throw Error(ErrorCode::kInternal, "a broken Redis connection was reused");
  // Marked broken until every reply is read, so an exception in between (a failed
  // allocation) can never leave replies unread on a reused connection.
  broken_ = true;
  if (redisAppendFormattedCommand(context_, commands.data(), commands.size()) != REDIS_OK)
    fail("sending a command");
  std::vector<RedisReplyPtr> replies;
  replies.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    void* raw = nullptr;
    if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) fail("reading a reply");
    replies.emplace_back(static_cast<redisReply*>(raw));
  }
  broken_ = false;
  return replies;
}

void RedisConnection::send(std::string_view commands, std::size_t count) {
  if (broken_) throw Error(ErrorCode::kInternal, "a broken Redis connection was reused");
  owed_ += count;
  if (redisAppendFormattedCommand(context_, commands.data(), commands.size()) != REDIS_OK)
    fail("sending a command");
  int done = 0;
  while (!done) {
    if (redisBufferWrite(context_, &done) != REDIS_OK) fail("sending a command");
  }
}

RedisReplyPtr RedisConnection::read_reply() {
  if (broken_ || owed_ == 0) throw Error(ErrorCode::kInternal, "no Redis reply is owed");
  void* raw = nullptr;
  if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) fail("reading a reply");
  --owed_;
  return RedisReplyPtr(static_cast<redisReply*>(raw));
}

RedisReplyPtr RedisConnection::command(std::initializer_list<std::string_view> args) {
  std::string text;
  append_resp_command(text, args);
  return std::move(pipeline(text, 1).front());
}

RedisConnectionPool::RedisConnectionPool(RedisOptions options)
    : options_(std::move(options)), address_(redis_address(options_.host, options_.port)) {}

RedisConnectionPool::~RedisConnectionPool() = default;

std::int64_t RedisConnectionPool::max_bulk_length() {
  std::int64_t known = max_bulk_length_.load(std::memory_order_acquire);
  if (known >= 0) return known;
  run([](RedisConnection&) {});  // the first connection reads it
  known = max_bulk_length_.load(std::memory_order_acquire);
  return known >= 0 ? known : kDefaultMaxBulkLength;
}

std::int64_t RedisConnectionPool::known_max_bulk_length() const noexcept {
  const std::int64_t known = max_bulk_length_.load(std::memory_order_acquire);
  return known >= 0 ? known : kDefaultMaxBulkLength;
}

std::unique_ptr<RedisConnection> RedisConnectionPool::connect_with_retries() {
  std::chrono::milliseconds backoff = options_.retry_backoff;
  for (int attempt = 0;; ++attempt) {
    try {
      auto connection = std::make_unique<RedisConnection>(options_, address_);
      opened_.fetch_add(1);
      if (max_bulk_length_.load(std::memory_order_acquire) < 0) {
        RedisReplyPtr reply = connection->command({"CONFIG", "GET", "proto-max-bulk-len"});
        std::int64_t limit = kDefaultMaxBulkLength;
        if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
            reply->element[1]->type == REDIS_REPLY_STRING) {
          const std::string_view text = reply_text(reply->element[1]);
          std::int64_t parsed = 0;
          auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), parsed);
          if (ec == std::errc() && ptr == text.data() + text.size() && parsed > 0) limit = parsed;
        }
        max_bulk_length_.store(limit, std::memory_order_release);
      }
      return connection;
    } catch (const Error& error) {
      const bool retryable =
          error.code() == ErrorCode::kUnavailable || error.code() == ErrorCode::kDeadlineExceeded;
      if (!retryable || attempt >= options_.retries) throw;
    }
    std::this_thread::sleep_for(backoff);
    backoff *= 2;
  }
}

RedisConnectionPool::Lease RedisConnectionPool::acquire() {
  {
    MutexLock lock(mu_);
    while (idle_.empty() && in_use_ >= options_.pool_size) slot_freed_.wait(mu_);
    ++in_use_;
    if (!idle_.empty()) {
      Lease lease{std::move(idle_.back()), true};
      idle_.pop_back();
      return lease;
    }
  }
  try {
    return Lease{connect_with_retries(), false};
  } catch (...) {
    MutexLock lock(mu_);
    --in_use_;
    slot_freed_.notify_one();
    throw;
  }
}

void RedisConnectionPool::release(std::unique_ptr<RedisConnection> connection) {
  MutexLock lock(mu_);
  --in_use_;
  if (connection && !connection->broken()) idle_.push_back(std::move(connection));
  slot_freed_.notify_one();
}

void RedisConnectionPool::close_idle() noexcept {
  std::vector<std::unique_ptr<RedisConnection>> idle;
  MutexLock lock(mu_);
  idle.swap(idle_);
}

void RedisConnectionPool::discard() noexcept {
  std::vector<std::unique_ptr<RedisConnection>> stale;
  {
    MutexLock lock(mu_);
    --in_use_;
    // The server these came from may be gone too: open new ones on demand.
    stale.swap(idle_);
    slot_freed_.notify_all();
  }
}

}  // namespace kvdex::detail
