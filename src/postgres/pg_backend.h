// The connections behind a PostgresKVStore: a bounded pool of blocking connections
// for the synchronous calls, and event-loop threads owning non-blocking connections
// in pipeline mode for the asynchronous ones.
#ifndef KVDEX_SRC_POSTGRES_PG_BACKEND_H_
#define KVDEX_SRC_POSTGRES_PG_BACKEND_H_

#include <atomic>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "kvdex/thread_annotations.h"
#include "postgres/pg_common.h"

namespace kvdex::detail {

// A pooled blocking connection and what has been prepared on it.
struct PooledConnection {
  PgConn conn;
  bool prepared = false;
  // Row counts whose upsert is prepared on this connection (as kvdex_upsert_<rows>):
  // planning a 1,000-row INSERT costs more than running it (measured: put_all(1000)
  // at 0.44x raw libpq's prepared upsert without this).
  std::vector<std::size_t> prepared_upserts;
};

class ConnectionPool {
 public:
  ConnectionPool(const PgTarget& target, std::size_t max_connections)
      : target_(target), max_(max_connections) {}

  // A connection held by one caller; dropped (not returned) unless give_back() is
  // called, so a connection left mid-statement by an exception is never reused.
  class Lease {
   public:
    Lease(ConnectionPool* pool, std::unique_ptr<PooledConnection> connection)
        : pool_(pool), connection_(std::move(connection)) {}
    Lease(Lease&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)), connection_(std::move(other.connection_)) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (pool_) pool_->drop();
    }
    PooledConnection& operator*() { return *connection_; }
    PooledConnection* operator->() { return connection_.get(); }
    void give_back() {
      pool_->put_back(std::move(connection_));
      pool_ = nullptr;
    }

   private:
    ConnectionPool* pool_;
    std::unique_ptr<PooledConnection> connection_;
  };

  // Waits while every connection is in use; connects a new one when the pool may
  // grow. Throws what pg_connect throws.
  Lease acquire() KVDEX_EXCLUDES(mu_);
  void close_all() KVDEX_EXCLUDES(mu_);

 private:
  void put_back(std::unique_ptr<PooledConnection> connection) KVDEX_EXCLUDES(mu_);
  void drop() KVDEX_EXCLUDES(mu_);

  const PgTarget& target_;
  const std::size_t max_;
  Mutex mu_;
  CondVar available_;
  std::vector<std::unique_ptr<PooledConnection>> idle_ KVDEX_GUARDED_BY(mu_);
  std::size_t leased_ KVDEX_GUARDED_BY(mu_) = 0;
};

// One asynchronous request: commands sent back to back, then a pipeline sync, so
// they run as one implicit transaction. `done` gets each command's result (a failed
// command's error instead, as an exception) on an event-loop thread.
struct AsyncRequest {
  std::vector<PgCommand> commands;
  bool retry_safe = false;  // may be sent again on a fresh connection
  // A single read: consecutive groupable requests share one pipeline sync (so one
  // server round of flushing for many gets, as a hand-written pipeline would); one
  // that fails aborts the rest of its group, which are sent again.
  bool groupable = false;
  bool awaits_sync = true;  // false inside a group but for its last request
  int attempts = 0;
  std::function<void(std::vector<PgResult>& results, std::exception_ptr error)> done;
};

class EventLoop;

class AsyncEngine {
 public:
  AsyncEngine(const PgTarget& target, std::size_t threads, std::size_t connections);
  ~AsyncEngine();  // stops and joins the loops; no request may be outstanding
  void submit(std::unique_ptr<AsyncRequest> request);

 private:
  std::vector<std::unique_ptr<EventLoop>> loops_;
  std::atomic<std::size_t> next_{0};
};

class PostgresBackend {
 public:
  explicit PostgresBackend(PgTarget target)
      : target_(std::move(target)), pool_(target_, target_.options.pool_size) {}

  const PgTarget& target() const { return target_; }
  ConnectionPool& pool() { return pool_; }
  // Created on first use, so a store used only synchronously starts no thread.
  AsyncEngine& async() KVDEX_EXCLUDES(async_mu_);

 private:
  PgTarget target_;
  ConnectionPool pool_;
  Mutex async_mu_;
  std::unique_ptr<AsyncEngine> async_ KVDEX_GUARDED_BY(async_mu_);
};

}  // namespace kvdex::detail

#endif  // KVDEX_SRC_POSTGRES_PG_BACKEND_H_
