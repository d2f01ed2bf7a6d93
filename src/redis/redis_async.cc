#include "redis/redis_async.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <future>
#include <mutex>
#include <thread>
#include <utility>

#include "kvdex/thread_annotations.h"

namespace kvdex::detail {

class RedisEventLoop {
 public:
  RedisEventLoop() {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epoll_fd_ < 0 || wake_fd_ < 0) throw_errno(errno, "create the Redis event loop", "epoll");
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.ptr = nullptr;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &event) != 0)
      throw_errno(errno, "create the Redis event loop", "eventfd");
    // Never joined: the loops live as long as the process (as default_executor()).
    std::thread([this] { run(); }).detach();
  }

  void post(std::function<void()> task) {
    {
      MutexLock lock(mu_);
      tasks_.push_back(std::move(task));
      // One wake-up per batch: a loop that has not yet drained the queue will see
      // this task too, so a burst of calls costs one eventfd write, not one each.
      if (tasks_.size() > 1) return;
    }
    const std::uint64_t one = 1;
    while (::write(wake_fd_, &one, sizeof one) < 0 && errno == EINTR) {
    }
  }

  bool on_loop() const { return std::this_thread::get_id() == thread_id_.load(); }
  int epoll_fd() const { return epoll_fd_; }

  // Loop thread only.
  void attach(std::shared_ptr<AsyncRedisConnection> connection) {
    for (const auto& c : connections_) {
      if (c == connection) return;
    }
    connections_.push_back(std::move(connection));
  }
  void forget(AsyncRedisConnection* connection) {
    for (std::size_t i = 0; i < connections_.size(); ++i) {
      if (connections_[i].get() == connection) {
        // Kept alive until the current batch of events is handled: an event of this
        // batch may still name it.
        graveyard_.push_back(std::move(connections_[i]));
        connections_.erase(connections_.begin() + static_cast<std::ptrdiff_t>(i));
        return;
      }
    }
  }

 private:
  void run() {
    thread_id_.store(std::this_thread::get_id());
    constexpr int kMaxEvents = 64;
    epoll_event events[kMaxEvents];
    auto last_check = std::chrono::steady_clock::now();
    for (;;) {
      const int n = epoll_wait(epoll_fd_, events, kMaxEvents, 20);
      for (int i = 0; i < n; ++i) {
        if (events[i].data.ptr == nullptr) {
          std::uint64_t count = 0;
          while (::read(wake_fd_, &count, sizeof count) > 0) {
          }
          run_tasks();
        } else {
          static_cast<AsyncRedisConnection*>(events[i].data.ptr)->handle_events(events[i].events);
        }
      }
      const auto now = std::chrono::steady_clock::now();
      if (now - last_check >= std::chrono::milliseconds(20)) {
        last_check = now;
        // check_deadlines may fail a connection, and callbacks may start or stop others.
        std::vector<std::shared_ptr<AsyncRedisConnection>> snapshot = connections_;
        for (const auto& connection : snapshot) connection->check_deadlines(now);
      }
      graveyard_.clear();
    }
  }

  void run_tasks() {
    for (;;) {
      std::vector<std::function<void()>> batch;
      {
        MutexLock lock(mu_);
        batch.swap(tasks_);
      }
      if (batch.empty()) return;
      for (auto& task : batch) task();
    }
  }

  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::atomic<std::thread::id> thread_id_{};
  Mutex mu_;
  std::vector<std::function<void()>> tasks_ KVDEX_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<AsyncRedisConnection>> connections_;  // loop thread
  std::vector<std::shared_ptr<AsyncRedisConnection>> graveyard_;    // loop thread
};

namespace {

constexpr std::size_t kLoopThreads = 2;

struct Loops {
  pid_t pid;
  std::vector<RedisEventLoop*> loops;
};

// ---- hiredis event adapter: the ac->ev hooks ---------------------------------------
AsyncRedisConnection* connection_of(void* privdata) {
  return static_cast<AsyncRedisConnection*>(privdata);
}
void add_read(void* privdata) { connection_of(privdata)->update_interest(EPOLLIN, 0); }
void del_read(void* privdata) { connection_of(privdata)->update_interest(0, EPOLLIN); }
void add_write(void* privdata) { connection_of(privdata)->update_interest(EPOLLOUT, 0); }
void del_write(void* privdata) { connection_of(privdata)->update_interest(0, EPOLLOUT); }
void cleanup(void* privdata) { connection_of(privdata)->on_context_cleanup(); }

void connect_callback(const redisAsyncContext* context, int status) {
  static_cast<AsyncRedisConnection*>(context->data)->on_connected(status);
}

// privdata: a heap copy of the request's shared_ptr, one per command.
void reply_callback(redisAsyncContext* context, void* reply, void* privdata) {
  std::unique_ptr<std::shared_ptr<AsyncRequest>> request(
      static_cast<std::shared_ptr<AsyncRequest>*>(privdata));
  static_cast<AsyncRedisConnection*>(context->data)
      ->on_command_reply(*request, static_cast<redisReply*>(reply));
}

std::exception_ptr unavailable(const std::string& text) {
  return std::make_exception_ptr(Error(ErrorCode::kUnavailable, text));
}

}  // namespace

RedisEventLoop& redis_event_loop_for(std::size_t index) {
  static std::mutex mu;
  static Loops* loops = nullptr;
  std::lock_guard<std::mutex> lock(mu);
  if (loops == nullptr || loops->pid != getpid()) {
    // After fork() the parent's loop threads do not exist here: start new ones (the
    // old objects are left alone, as their threads are gone).
    loops = new Loops{getpid(), {}};
    for (std::size_t i = 0; i < kLoopThreads; ++i) loops->loops.push_back(new RedisEventLoop());
  }
  return *loops->loops[index % kLoopThreads];
}

bool on_redis_event_loop(const RedisEventLoop& loop) { return loop.on_loop(); }

bool on_any_redis_event_loop() {
  for (std::size_t i = 0; i < kLoopThreads; ++i) {
    if (redis_event_loop_for(i).on_loop()) return true;
  }
  return false;
}

void post_to_redis_event_loop(RedisEventLoop& loop, std::function<void()> task) {
  loop.post(std::move(task));
}

AsyncRedisConnection::AsyncRedisConnection(RedisOptions options, std::string address,
                                           RedisEventLoop& loop,
                                           std::shared_ptr<std::atomic<std::uint64_t>> opened)
    : options_(std::move(options)),
      address_(std::move(address)),
      loop_(loop),
      opened_(std::move(opened)) {}

AsyncRedisConnection::~AsyncRedisConnection() = default;

void AsyncRedisConnection::submit(std::shared_ptr<AsyncRequest> request) {
  if (loop_.on_loop()) {
    send(std::move(request));
    return;
  }
  loop_.post([self = shared_from_this(), request = std::move(request)]() mutable {
    self->send(std::move(request));
  });
}

void AsyncRedisConnection::shutdown() {
  auto close = [self = shared_from_this()] {
    self->closed_ = true;
    if (self->context_ != nullptr) {
      self->fail(std::make_exception_ptr(
          Error(ErrorCode::kFailedPrecondition, "the Redis store was closed")));
    }
    if (self->context_ == nullptr) self->loop_.forget(self.get());
  };
  if (on_any_redis_event_loop()) {
    loop_.post(std::move(close));
    return;
  }
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> closed = done->get_future();
  loop_.post([close = std::move(close), done] {
    close();
    done->set_value();
  });
  closed.wait();
}

bool AsyncRedisConnection::connect() {
  redisAsyncContext* context = redisAsyncConnect(options_.host.c_str(), options_.port);
  if (context == nullptr) {
    failure_ = std::make_exception_ptr(Error(ErrorCode::kResourceExhausted, "out of memory"));
    return false;
  }
  if (context->err != 0) {
    failure_ = unavailable("Redis at " + address_ + " is unreachable: " + context->errstr);
    redisAsyncFree(context);
    return false;
  }
  opened_->fetch_add(1);
  failure_ = nullptr;
  context_ = context;
  fd_ = context->c.fd;
  context->data = this;
  context->ev.data = this;
  context->ev.addRead = add_read;
  context->ev.delRead = del_read;
  context->ev.addWrite = add_write;
  context->ev.delWrite = del_write;
  context->ev.cleanup = cleanup;
  redisAsyncSetConnectCallback(context, connect_callback);
  connecting_ = true;
  const auto now = std::chrono::steady_clock::now();
  connect_deadline_ = now + options_.connect_timeout;
  last_progress_ = now;
  loop_.attach(shared_from_this());
  // AUTH and SELECT go first; a refusal fails the connection with its error.
  if (!options_.password.empty() || options_.db != 0) {
    auto setup = std::make_shared<AsyncRequest>();
    const std::string db = std::to_string(options_.db);
    if (!options_.password.empty()) {
      if (options_.user.empty()) {
        setup->add({"AUTH", options_.password});
      } else {
        setup->add({"AUTH", options_.user, options_.password});
      }
    }
    if (options_.db != 0) setup->add({"SELECT", db});
    setup->on_reply = [this, db](std::size_t, const redisReply& reply) {
      if (reply.type == REDIS_REPLY_ERROR)
        throw_reply_error(reply_text(&reply), address_, "connection setup (AUTH/SELECT)");
    };
    setup->on_done = [this](std::exception_ptr error) {
      if (error) fail(error);
    };
    send(std::move(setup));
  }
  return true;
}

void AsyncRedisConnection::send(std::shared_ptr<AsyncRequest> request) {
  auto finish = [&](std::exception_ptr error) {
    request->finished = true;
    request->on_done(std::move(error));
  };
  if (closed_) {
    finish(std::make_exception_ptr(
        Error(ErrorCode::kFailedPrecondition, "the Redis store was closed")));
    return;
  }
  if (context_ == nullptr && !connect()) {
    finish(failure_);
    return;
  }
  if (in_flight_ == 0) last_progress_ = std::chrono::steady_clock::now();
  std::size_t start = 0;
  for (const std::size_t end : request->command_ends) {
    auto* holder = new std::shared_ptr<AsyncRequest>(request);
    if (context_ == nullptr ||
        redisAsyncFormattedCommand(context_, reply_callback, holder,
                                   request->commands.data() + start, end - start) != REDIS_OK) {
      delete holder;
      if (!request->finished) finish(connection_error());
      return;
    }
    ++in_flight_;
    start = end;
  }
}

void AsyncRedisConnection::on_command_reply(std::shared_ptr<AsyncRequest>& request,
                                            redisReply* reply) {
  if (in_flight_ > 0) --in_flight_;
  last_progress_ = std::chrono::steady_clock::now();
  if (request->finished) return;
  if (reply == nullptr) {
    request->finished = true;
    request->on_done(connection_error());
    return;
  }
  const std::size_t index = request->replies_seen++;
  if (!request->error) {
    try {
      request->on_reply(index, *reply);
    } catch (...) {
      request->error = std::current_exception();
    }
  }
  if (request->replies_seen == request->command_ends.size()) {
    request->finished = true;
    request->on_done(request->error);
  }
}

std::exception_ptr AsyncRedisConnection::connection_error() const {
  if (failure_) return failure_;
  if (context_ != nullptr && context_->err != 0) {
    return unavailable("Redis at " + address_ + " went away: " + context_->errstr);
  }
  return unavailable("Redis at " + address_ + " closed the connection");
}

void AsyncRedisConnection::fail(std::exception_ptr error) {
  if (context_ == nullptr) return;
  failure_ = std::move(error);
  // Runs every pending callback with no reply (each request fails with failure_),
  // then our cleanup hook; deferred by hiredis when called from inside a callback.
  redisAsyncFree(context_);
}

void AsyncRedisConnection::on_connected(int status) {
  connecting_ = false;
  last_progress_ = std::chrono::steady_clock::now();
  if (status != REDIS_OK && !failure_) {
    failure_ = unavailable("Redis at " + address_ + " is unreachable: " +
                           (context_ != nullptr ? context_->errstr : "connection failed"));
  }
}

void AsyncRedisConnection::check_deadlines(std::chrono::steady_clock::time_point now) {
  if (context_ == nullptr) return;
  if (connecting_ && now > connect_deadline_) {
    fail(std::make_exception_ptr(
        Error(ErrorCode::kDeadlineExceeded,
              "Redis at " + address_ + " did not accept a connection within " +
                  std::to_string(options_.connect_timeout.count()) + " ms")));
  } else if (in_flight_ > 0 && now - last_progress_ > options_.command_timeout) {
    fail(std::make_exception_ptr(
        Error(ErrorCode::kDeadlineExceeded, "Redis at " + address_ + " did not answer within " +
                                                std::to_string(options_.command_timeout.count()) +
                                                " ms")));
  }
}

void AsyncRedisConnection::handle_events(std::uint32_t events) {
  if (context_ != nullptr && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0)
    redisAsyncHandleRead(context_);
  if (context_ != nullptr && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0)
    redisAsyncHandleWrite(context_);
}

void AsyncRedisConnection::update_interest(std::uint32_t add, std::uint32_t remove) {
  const std::uint32_t wanted = (interest_ | add) & ~remove;
  if (registered_ && wanted == interest_) return;
  interest_ = wanted;
  epoll_event event{};
  event.events = interest_;
  event.data.ptr = this;
  if (!registered_) {
    if (epoll_ctl(loop_.epoll_fd(), EPOLL_CTL_ADD, fd_, &event) == 0) registered_ = true;
  } else {
    epoll_ctl(loop_.epoll_fd(), EPOLL_CTL_MOD, fd_, &event);
  }
}

void AsyncRedisConnection::on_context_cleanup() {
  if (registered_) epoll_ctl(loop_.epoll_fd(), EPOLL_CTL_DEL, fd_, nullptr);
  registered_ = false;
  interest_ = 0;
  context_ = nullptr;
  connecting_ = false;
  fd_ = -1;
  in_flight_ = 0;
  if (closed_) loop_.forget(this);
}

}  // namespace kvdex::detail
