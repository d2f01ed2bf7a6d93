// The asynchronous half of the PostgreSQL backend: event-loop threads, each owning a
// few non-blocking connections in pipeline mode. A request is its commands followed
// by a pipeline sync (one implicit transaction); requests queue back to back on a
// connection without waiting for each other's replies, and each loop waits in poll()
// on its connections' sockets and an eventfd that submit() writes.
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "postgres/pg_backend.h"

namespace kvdex::detail {

namespace {

struct LoopConnection {
  PgConn conn;
  std::deque<std::unique_ptr<AsyncRequest>> inflight;
  std::size_t command_index = 0;  // the command of the front request being read
  std::vector<PgResult> results;  // the front request's results so far
  bool want_write = false;
  // Row counts whose upsert is prepared here (kvdex_upsert_<rows>), as the pooled
  // connections do: planning a 1,000-row INSERT costs more than running it.
  std::vector<std::size_t> prepared_upserts;
};

}  // namespace

// Shared by the loop's thread and its owner, so that a store destroyed from a
// completion callback (on the loop's own thread) leaves the state alive until the
// thread has returned.
class LoopState {
 public:
  LoopState(PgTarget target, std::size_t connections)
      : target_(std::move(target)), connections_(connections) {
    wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0) throw_errno(errno, "eventfd for", "the PostgreSQL event loop");
  }
  ~LoopState() { ::close(wake_fd_); }

  void submit(std::unique_ptr<AsyncRequest> request) KVDEX_EXCLUDES(mu_) {
    {
      MutexLock lock(mu_);
      queue_.push_back(std::move(request));
    }
    wake();
  }

  void stop() KVDEX_EXCLUDES(mu_) {
    {
      MutexLock lock(mu_);
      stopping_ = true;
    }
    wake();
  }

  void run() KVDEX_EXCLUDES(mu_);

 private:
  void wake() {
    const std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
  }
  void dispatch(std::unique_ptr<AsyncRequest> request);
  void dispatch_group(std::vector<std::unique_ptr<AsyncRequest>> group);
  LoopConnection* choose_connection(std::exception_ptr& error);
  bool open(LoopConnection& connection, std::exception_ptr& error);
  bool send(LoopConnection& connection, AsyncRequest& request);
  void flush(LoopConnection& connection);
  void read(LoopConnection& connection);
  void finish_front(LoopConnection& connection);
  void fail_connection(LoopConnection& connection);
  void retry_or_fail(std::unique_ptr<AsyncRequest> request, const std::string& why);
  void complete(std::unique_ptr<AsyncRequest> request, std::vector<PgResult>& results,
                std::exception_ptr error);

  const PgTarget target_;
  std::vector<LoopConnection> connections_;          // the loop thread's only
  std::deque<std::unique_ptr<AsyncRequest>> retry_;  // the loop thread's only
  int wake_fd_ = -1;
  Mutex mu_;
  std::deque<std::unique_ptr<AsyncRequest>> queue_ KVDEX_GUARDED_BY(mu_);
  bool stopping_ KVDEX_GUARDED_BY(mu_) = false;
};

class EventLoop {
 public:
  EventLoop(const PgTarget& target, std::size_t connections)
      : state_(std::make_shared<LoopState>(target, connections)) {
    thread_ = std::thread([state = state_] { state->run(); });
  }
  ~EventLoop() {
    state_->stop();
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();  // destroyed from a completion callback: the thread ends by itself
    } else {
      thread_.join();
    }
  }
  void submit(std::unique_ptr<AsyncRequest> request) { state_->submit(std::move(request)); }

 private:
  std::shared_ptr<LoopState> state_;
  std::thread thread_;
};

AsyncEngine::AsyncEngine(const PgTarget& target, std::size_t threads, std::size_t connections) {
  for (std::size_t i = 0; i < threads; ++i) {
    const std::size_t mine = connections / threads + (i < connections % threads ? 1 : 0);
    loops_.push_back(std::make_unique<EventLoop>(target, mine));
  }
}

AsyncEngine::~AsyncEngine() = default;

void AsyncEngine::submit(std::unique_ptr<AsyncRequest> request) {
  const std::size_t i = next_.fetch_add(1, std::memory_order_relaxed) % loops_.size();
  loops_[i]->submit(std::move(request));
}

void LoopState::run() {
  std::vector<pollfd> fds;
  for (;;) {
    std::deque<std::unique_ptr<AsyncRequest>> incoming;
    bool stopping = false;
    {
      MutexLock lock(mu_);
      incoming.swap(queue_);
      stopping = stopping_;
    }
    while (!retry_.empty()) {
      incoming.push_front(std::move(retry_.back()));
      retry_.pop_back();
    }
    constexpr std::size_t kMaxGroup = 1000;
    std::vector<std::unique_ptr<AsyncRequest>> group;
    for (auto& request : incoming) {
      if (request->groupable) {
        group.push_back(std::move(request));
        if (group.size() == kMaxGroup) {
          dispatch_group(std::move(group));
          group.clear();
        }
        continue;
      }
      if (!group.empty()) dispatch_group(std::move(group));
      group.clear();
      dispatch(std::move(request));
    }
    if (!group.empty()) dispatch_group(std::move(group));
    bool busy = !retry_.empty();
    for (const LoopConnection& c : connections_) busy = busy || !c.inflight.empty();
    if (stopping && !busy) break;
    if (!retry_.empty()) continue;
    // libpq may have read replies while sending (a non-blocking flush reads to avoid
    // a deadlock with the server): those wait in its buffer, not on the socket, so
    // poll() would not report them.
    for (LoopConnection& c : connections_) {
      if (c.conn && !c.inflight.empty()) read(c);
    }
    if (!retry_.empty()) continue;

    fds.clear();
    fds.push_back(pollfd{wake_fd_, POLLIN, 0});
    for (const LoopConnection& c : connections_) {
      const int fd = c.conn ? PQsocket(c.conn.get()) : -1;
      fds.push_back(
          pollfd{fd, static_cast<short>(fd >= 0 ? (POLLIN | (c.want_write ? POLLOUT : 0)) : 0), 0});
    }
    if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) continue;
    if (fds[0].revents & POLLIN) {
      std::uint64_t count;
      [[maybe_unused]] ssize_t n = ::read(wake_fd_, &count, sizeof count);
    }
    for (std::size_t i = 0; i < connections_.size(); ++i) {
      LoopConnection& c = connections_[i];
      const short revents = fds[i + 1].revents;
      if (!c.conn || revents == 0) continue;
      if (revents & POLLOUT) flush(c);
      if (c.conn && (revents & (POLLIN | POLLERR | POLLHUP))) read(c);
    }
  }
  connections_.clear();
}

bool LoopState::open(LoopConnection& c, std::exception_ptr& error) {
  c.prepared_upserts.clear();
  try {
    c.conn = pg_connect(target_);  // blocking, bounded by connect_timeout
  } catch (RetryableFailure& failure) {
    error = std::make_exception_ptr(failure.error);
    return false;
  } catch (...) {
    error = std::current_exception();
    return false;
  }
  PGconn* conn = c.conn.get();
  if (PQsetnonblocking(conn, 1) != 0 || PQenterPipelineMode(conn) != 1) {
    error = std::make_exception_ptr(
        Error(ErrorCode::kUnavailable, "PostgreSQL server " + target_.server + ": " +
                                           std::string(PQerrorMessage(conn)) + " (pipeline mode)"));
    c.conn.reset();
    return false;
  }
  // The statements every request uses, prepared ahead of them in the pipeline.
  auto prepare = std::make_unique<AsyncRequest>();
  const std::pair<const char*, std::string> statements[] = {{kGetStatement, sql_get(target_)},
                                                            {kRemoveStatement, sql_remove(target_)},
                                                            {kScanStatement, sql_scan(target_)}};
  for (const auto& [name, sql] : statements) {
    PgCommand& command = prepare->commands.emplace_back();
    command.is_prepare = true;
    command.prepared = name;
    command.sql = sql;
    command.description = "preparing statements";
  }
  if (!send(c, *prepare)) {
    error = std::make_exception_ptr(Error(
        ErrorCode::kUnavailable,
        "PostgreSQL server " + target_.server + ": connection lost while preparing statements"));
    c.conn.reset();
    return false;
  }
  c.inflight.push_back(std::move(prepare));
  return true;
}

bool LoopState::send(LoopConnection& c, AsyncRequest& request) {
  constexpr std::size_t kMaxPreparedUpserts = 16;
  PGconn* conn = c.conn.get();
  auto& prepared = c.prepared_upserts;
  auto is_prepared = [&](std::size_t rows) {
    return rows > 0 && std::find(prepared.begin(), prepared.end(), rows) != prepared.end();
  };
  // Upserts not yet prepared here are prepared first, each by a request of its own
  // ahead of this one (a request's results are matched to its commands one for one,
  // and its commands must stay within one Sync: one transaction).
  for (const PgCommand& command : request.commands) {
    const std::size_t rows = command.upsert_rows;
    if (rows == 0 || is_prepared(rows) || prepared.size() >= kMaxPreparedUpserts) continue;
    auto prepare = std::make_unique<AsyncRequest>();
    PgCommand& statement = prepare->commands.emplace_back();
    statement.is_prepare = true;
    statement.prepared = "kvdex_upsert_" + std::to_string(rows);
    statement.sql = command.sql;
    statement.upsert_rows = rows;
    statement.description = "preparing an upsert";
    if (statement.send(conn) != 1 || PQpipelineSync(conn) != 1) return false;
    c.inflight.push_back(std::move(prepare));
    prepared.push_back(rows);
  }
  for (const PgCommand& command : request.commands) {
    if (is_prepared(command.upsert_rows)) {
      const std::string name = "kvdex_upsert_" + std::to_string(command.upsert_rows);
      if (PQsendQueryPrepared(conn, name.c_str(), static_cast<int>(command.params.size()),
                              command.params.data(), command.lengths.data(), command.formats.data(),
                              0) != 1)
        return false;
    } else if (command.send(conn) != 1) {
      return false;
    }
  }
  if (PQpipelineSync(conn) != 1) return false;
  flush(c);
  return c.conn != nullptr;
}

void LoopState::flush(LoopConnection& c) {
  const int status = PQflush(c.conn.get());
  if (status < 0) {
    fail_connection(c);
  } else {
    c.want_write = status == 1;
  }
}

LoopConnection* LoopState::choose_connection(std::exception_ptr& error) {
  LoopConnection* best = nullptr;
  for (LoopConnection& c : connections_) {
    if (!c.conn) continue;
    if (!best || c.inflight.size() < best->inflight.size()) best = &c;
  }
  if (best == nullptr || (!best->inflight.empty() && best->inflight.size() > 64)) {
    // Open a closed connection when every open one is busy (or none is open).
    for (LoopConnection& c : connections_) {
      if (c.conn) continue;
      if (open(c, error)) best = &c;
      break;
    }
  }
  return best;
}

void LoopState::dispatch(std::unique_ptr<AsyncRequest> request) {
  std::exception_ptr error;
  LoopConnection* best = choose_connection(error);
  if (best == nullptr) {
    std::vector<PgResult> none;
    complete(std::move(request), none, std::move(error));
    return;
  }
  ++request->attempts;
  request->awaits_sync = true;
  if (!send(*best, *request)) {
    // The connection broke while sending: the request shares its in-flight peers' fate.
    if (best->conn) {
      best->inflight.push_back(std::move(request));
      fail_connection(*best);
    } else {
      retry_or_fail(std::move(request), "connection lost while sending");
    }
    return;
  }
  best->inflight.push_back(std::move(request));
}

void LoopState::dispatch_group(std::vector<std::unique_ptr<AsyncRequest>> group) {
  std::exception_ptr error;
  LoopConnection* best = choose_connection(error);
  if (best == nullptr) {
    for (auto& request : group) {
      std::vector<PgResult> none;
      // The last request takes the loop's own reference: none is dropped here after
      // a caller was woken (TSan cannot see libstdc++'s exception_ptr refcount).
      const bool last = &request == &group.back();
      complete(std::move(request), none, last ? std::move(error) : error);
    }
    return;
  }
  PGconn* conn = best->conn.get();
  bool sent = true;
  for (std::size_t i = 0; i < group.size(); ++i) {
    AsyncRequest& request = *group[i];
    ++request.attempts;
    request.awaits_sync = i + 1 == group.size();
    for (const PgCommand& command : request.commands) sent = sent && command.send(conn) == 1;
  }
  sent = sent && PQpipelineSync(conn) == 1;
  for (auto& request : group) best->inflight.push_back(std::move(request));
  if (!sent) {
    fail_connection(*best);
    return;
  }
  flush(*best);
}

void LoopState::read(LoopConnection& c) {
  PGconn* conn = c.conn.get();
  if (PQconsumeInput(conn) != 1) {
    fail_connection(c);
    return;
  }
  while (!c.inflight.empty() && !PQisBusy(conn)) {
    PGresult* raw = PQgetResult(conn);
    AsyncRequest& front = *c.inflight.front();
    if (raw == nullptr) {
      if (c.command_index < front.commands.size()) ++c.command_index;  // a command's end
      if (c.command_index == front.commands.size() && !front.awaits_sync) finish_front(c);
      continue;
    }
    PgResult result(raw);
    if (PQresultStatus(raw) == PGRES_PIPELINE_SYNC) {
      finish_front(c);
      continue;
    }
    if (pg_connection_broken(conn, raw)) {
      fail_connection(c);
      return;
    }
    if (c.results.size() == c.command_index) c.results.push_back(std::move(result));
  }
  if (PQstatus(conn) == CONNECTION_BAD) fail_connection(c);
}

void LoopState::finish_front(LoopConnection& c) {
  std::unique_ptr<AsyncRequest> request = std::move(c.inflight.front());
  c.inflight.pop_front();
  std::vector<PgResult> results = std::move(c.results);
  c.results.clear();
  c.command_index = 0;
  std::exception_ptr error;
  for (const PgResult& result : results) {
    if (PQresultStatus(result.get()) == PGRES_PIPELINE_ABORTED && request->groupable) {
      // Skipped because another request of its group failed: send it again.
      retry_or_fail(std::move(request), "a pipelined request was aborted");
      return;
    }
  }
  for (std::size_t i = 0; i < results.size(); ++i) {
    const ExecStatusType status = PQresultStatus(results[i].get());
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_PIPELINE_ABORTED)
      continue;
    try {
      throw_pg_failure(c.conn.get(), results[i].get(), target_,
                       i < request->commands.size() ? request->commands[i].description : "");
    } catch (RetryableFailure& failure) {
      error = std::make_exception_ptr(failure.error);
    } catch (...) {
      error = std::current_exception();
    }
    break;
  }
  if (!error && results.size() < request->commands.size()) {
    error = std::make_exception_ptr(
        Error(ErrorCode::kInternal, "PostgreSQL pipeline out of step on " + target_.server));
  }
  if (error && !request->done && request->commands.size() == 1 &&
      request->commands[0].upsert_rows > 0) {
    auto& prepared = c.prepared_upserts;  // its statement does not exist: prepare again
    prepared.erase(std::remove(prepared.begin(), prepared.end(), request->commands[0].upsert_rows),
                   prepared.end());
  }
  complete(std::move(request), results, std::move(error));
}

void LoopState::fail_connection(LoopConnection& c) {
  const std::string message = c.conn ? PQerrorMessage(c.conn.get()) : "";
  c.conn.reset();
  c.prepared_upserts.clear();
  c.want_write = false;
  c.results.clear();
  c.command_index = 0;
  std::deque<std::unique_ptr<AsyncRequest>> inflight;
  inflight.swap(c.inflight);
  for (auto& request : inflight) {
    if (!request->done) continue;  // the connection's own statement preparation
    retry_or_fail(std::move(request), "connection lost: " + message);
  }
}

void LoopState::retry_or_fail(std::unique_ptr<AsyncRequest> request, const std::string& why) {
  if (request->retry_safe && request->attempts <= target_.options.connect_retries) {
    retry_.push_back(std::move(request));
    return;
  }
  std::vector<PgResult> none;
  complete(std::move(request), none,
           std::make_exception_ptr(
               Error(ErrorCode::kUnavailable, "PostgreSQL server " + target_.server + ": " + why)));
}

void LoopState::complete(std::unique_ptr<AsyncRequest> request, std::vector<PgResult>& results,
                         std::exception_ptr error) {
  if (request->done) request->done(results, std::move(error));
}

}  // namespace kvdex::detail
