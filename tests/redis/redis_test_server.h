// A real redis-server (Debian's package) for the tests: started on 127.0.0.1 at a
// free port in a temporary directory, killed (SIGKILL) in the destructor whatever
// happened. restart() starts it again on the same port and directory, so a test can
// kill the server under a store and bring it back.
//
// Thread safety: one test thread drives it; command() opens its own connection.
#ifndef KVDEX_TESTS_REDIS_REDIS_TEST_SERVER_H_
#define KVDEX_TESTS_REDIS_REDIS_TEST_SERVER_H_

#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "test_util.h"

extern char** environ;

namespace kvdex::testing {

// A port nothing listens on right now (the kernel's choice for port 0).
inline int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error("no free loopback port");
  }
  const int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

class RedisTestServer {
 public:
  // `extra` are redis-server arguments ("--appendonly", "yes", ...). The server gets a
  // 1 MiB proto-max-bulk-len (the smallest Redis allows) so oversized-value tests are cheap.
  explicit RedisTestServer(std::vector<std::string> extra = {})
      : port_(free_loopback_port()), extra_(std::move(extra)) {
    start();
  }
  ~RedisTestServer() { kill(); }
  RedisTestServer(const RedisTestServer&) = delete;
  RedisTestServer& operator=(const RedisTestServer&) = delete;

  int port() const { return port_; }
  std::string uri(std::string_view suffix = "") const {
    return "redis://127.0.0.1:" + std::to_string(port_) + std::string(suffix);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string dir() const { return dir_.path(); }

  // SIGKILL, then reap: the server is gone when this returns.
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  // Starts the server again on the same port and directory (its AOF, if any, reloads).
  void restart() {
    kill();
    start();
  }

  // Runs one command on a fresh connection; returns the reply as text (integers in
  // decimal, arrays as their elements joined by '\n', nil as "(nil)").
  std::string command(std::initializer_list<std::string_view> args,
                      std::string_view password = "") const {
    redisContext* c = redisConnect("127.0.0.1", port_);
    if (c == nullptr || c->err) {
      std::string why = c ? c->errstr : "oom";
      if (c) redisFree(c);
      throw std::runtime_error("test redis: " + why);
    }
    if (!password.empty()) {
      auto* r =
          static_cast<redisReply*>(redisCommand(c, "AUTH %b", password.data(), password.size()));
      if (r) freeReplyObject(r);
    }
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (std::string_view a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
    std::string out = reply ? to_text(reply) : std::string("(error) ") + c->errstr;
    if (reply) freeReplyObject(reply);
    redisFree(c);
    return out;
  }

 private:
  static std::string to_text(const redisReply* r) {
    switch (r->type) {
      case REDIS_REPLY_INTEGER:
        return std::to_string(r->integer);
      case REDIS_REPLY_NIL:
        return "(nil)";
      case REDIS_REPLY_ARRAY: {
        std::string out;
        for (size_t i = 0; i < r->elements; ++i) {
          if (i) out += '\n';
          out += to_text(r->element[i]);
        }
        return out;
      }
      case REDIS_REPLY_ERROR:
        return "(error) " + std::string(r->str, r->len);
      default:
        return std::string(r->str, r->len);
    }
  }

  void start() {
    std::vector<std::string> args = {"redis-server",
                                     "--port",
                                     std::to_string(port_),
                                     "--bind",
                                     "127.0.0.1",
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "no",
                                     "--dir",
                                     dir_.path(),
                                     "--logfile",
                                     dir_.file("redis.log"),
                                     "--proto-max-bulk-len",
                                     "1mb",
                                     "--daemonize",
                                     "no"};
    args.insert(args.end(), extra_.begin(), extra_.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawnp(&pid_, "redis-server", nullptr, nullptr, argv.data(), environ) != 0)
      throw std::runtime_error("cannot start redis-server (Debian package redis-server)");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      redisContext* c = redisConnect("127.0.0.1", port_);
      const bool up = c != nullptr && c->err == 0;
      bool loaded = false;
      if (up) {
        auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
        // PONG, or NOAUTH when a password is set: either way it serves.
        loaded = r != nullptr && std::string_view(r->str ? r->str : "", r->len).find("LOADING") ==
                                     std::string_view::npos;
        if (r) freeReplyObject(r);
      }
      if (c) redisFree(c);
      if (loaded) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill();
    throw std::runtime_error("redis-server did not start on port " + std::to_string(port_) +
                             "; log: " + read_file_bytes(dir_.file("redis.log")));
  }

  TempDir dir_;
  int port_;
  std::vector<std::string> extra_;
  pid_t pid_ = -1;
};

}  // namespace kvdex::testing

#endif  // KVDEX_TESTS_REDIS_REDIS_TEST_SERVER_H_
