// LocalRedisCluster: a real Redis Cluster for tests, started from Debian's redis-server
// on 127.0.0.1 only, at free ports above the default ones, in a temporary directory,
// and stopped whatever happens.
//
//   kvdex::testing::LocalRedisCluster cluster({.masters = 3, .replicas_per_master = 1});
//   cluster.uri()  // "redis://127.0.0.1:<first master port>?cluster=1"
//
// Each node is a child process started with fork+exec after PR_SET_PDEATHSIG(SIGKILL),
// so a test binary that crashes or is killed takes its servers with it; the destructor
// SIGKILLs every node that is still running and removes the directory. The cluster is
// created with `redis-cli --cluster create ... --cluster-yes` and the constructor returns
// once every node reports cluster_state:ok and the same slot map (and each replica has
// finished its first sync).
//
// Thread safety: construct, use and destroy from one thread (PR_SET_PDEATHSIG fires when
// the *thread* that started a node exits, so keep the object on a thread that outlives
// it, e.g. the test's main thread via SetUpTestSuite). Errors: std::runtime_error with the
// node's log tail when a server fails to start or the cluster does not become ready.
#ifndef KVDEX_TESTS_REDIS_CLUSTER_LOCAL_REDIS_CLUSTER_H_
#define KVDEX_TESTS_REDIS_CLUSTER_LOCAL_REDIS_CLUSTER_H_

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace kvdex::testing {

struct RedisReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using RedisReplyPtr = std::unique_ptr<redisReply, RedisReplyDeleter>;

struct RedisContextDeleter {
  void operator()(redisContext* context) const { redisFree(context); }
};
using RedisContextPtr = std::unique_ptr<redisContext, RedisContextDeleter>;

// A plain blocking connection to one node for test set-up and checks (not the store).
inline RedisContextPtr connect_to_redis(int port) {
  timeval timeout{5, 0};
  RedisContextPtr context(redisConnectWithTimeout("127.0.0.1", port, timeout));
  if (!context || context->err) return nullptr;
  redisSetTimeout(context.get(), timeout);
  return context;
}

// Runs one command given as separate arguments (binary-safe); nullptr if the
// connection failed.
inline RedisReplyPtr redis_command(redisContext* context, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const std::string& arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  return RedisReplyPtr(static_cast<redisReply*>(
      redisCommandArgv(context, static_cast<int>(args.size()), argv.data(), lengths.data())));
}

inline std::string reply_text(const redisReply* reply) {
  if (reply == nullptr) return "<no reply>";
  if (reply->str != nullptr) return std::string(reply->str, reply->len);
  if (reply->type == REDIS_REPLY_INTEGER) return std::to_string(reply->integer);
  if (reply->type == REDIS_REPLY_NIL) return "<nil>";
  return "<array of " + std::to_string(reply->elements) + ">";
}

// One command on a fresh connection to 127.0.0.1:port; its reply as text.
inline std::string redis_command_text(int port, const std::vector<std::string>& args) {
  RedisContextPtr context = connect_to_redis(port);
  if (!context) return "<cannot connect to 127.0.0.1:" + std::to_string(port) + ">";
  RedisReplyPtr reply = redis_command(context.get(), args);
  return reply_text(reply.get());
}

class LocalRedisCluster {
 public:
  struct Options {
    int masters = 3;
    int replicas_per_master = 0;
    // node-timeout in ms: how long before a silent master is declared failed and its
    // replica promoted (small so failover tests are quick).
    int node_timeout_ms = 1000;
  };

  explicit LocalRedisCluster(Options options) : options_(options) {
    if (options_.masters < 3) throw std::invalid_argument("Redis Cluster needs at least 3 masters");
    std::random_device random;
    dir_ = std::filesystem::temp_directory_path() /
           ("kvdex-redis-cluster-" + std::to_string(random()) + "-" + std::to_string(random()));
    std::filesystem::create_directories(dir_);
    try {
      start_all();
    } catch (...) {
      stop_all();
      throw;
    }
  }

  ~LocalRedisCluster() { stop_all(); }
  LocalRedisCluster(const LocalRedisCluster&) = delete;
  LocalRedisCluster& operator=(const LocalRedisCluster&) = delete;

  // Every node's port, masters first as created (replicas are assigned by redis-cli).
  const std::vector<int>& ports() const { return ports_; }
  int first_port() const { return ports_.front(); }
  std::string seed_uri() const { return "redis://127.0.0.1:" + std::to_string(first_port()); }
  std::string uri() const { return seed_uri() + "?cluster=1"; }
  const std::filesystem::path& dir() const { return dir_; }

  // The role ("master"/"slave") 127.0.0.1:port reports right now.
  std::string role_of(int port) const {
    const std::string info = redis_command_text(port, {"INFO", "replication"});
    const std::size_t at = info.find("role:");
    if (at == std::string::npos) return "";
    return info.substr(at + 5, info.find_first_of("\r\n", at) - at - 5);
  }

  // The port of the master that serves `slot` according to 127.0.0.1:asked_port.
  int master_port_for_slot(int slot, int asked_port) const {
    RedisContextPtr context = connect_to_redis(asked_port);
    if (!context) return 0;
    RedisReplyPtr reply = redis_command(context.get(), {"CLUSTER", "SLOTS"});
    if (!reply || reply->type != REDIS_REPLY_ARRAY) return 0;
    for (size_t i = 0; i < reply->elements; ++i) {
      const redisReply* range = reply->element[i];
      if (range->element[0]->integer <= slot && slot <= range->element[1]->integer) {
        return static_cast<int>(range->element[2]->element[1]->integer);
      }
    }
    return 0;
  }

  bool is_running(int port) const {
    const auto found = pids_.find(port);
    return found != pids_.end() && found->second > 0;
  }

  // SIGKILLs the node at `port` (no shutdown, no save) and reaps it.
  void kill_node(int port) {
    auto found = pids_.find(port);
    if (found == pids_.end() || found->second <= 0) return;
    ::kill(found->second, SIGKILL);
    ::waitpid(found->second, nullptr, 0);
    found->second = -1;
  }

  // Restarts a killed node with its cluster config (it rejoins, as a replica if it was
  // failed over).
  void restart_node(int port) {
    start_node(port);
    wait_for_ping(port);
  }

  // Waits until every running node reports cluster_state:ok and all agree on which
  // master serves each slot; throws after `timeout`.
  void wait_until_ready(std::chrono::milliseconds timeout = std::chrono::seconds(30)) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string last;
    while (std::chrono::steady_clock::now() < deadline) {
      if (ready(&last)) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    throw std::runtime_error("Redis Cluster in " + dir_.string() + " not ready: " + last);
  }

  // Runs redis-cli with `args` (e.g. {"--cluster", "reshard", ...}); its exit status
  // and output (stdout and stderr) in *output.
  int run_redis_cli(const std::vector<std::string>& args, std::string* output) const {
    const std::filesystem::path out_file = dir_ / "redis-cli.out";
    std::vector<std::string> argv = {"redis-cli"};
    argv.insert(argv.end(), args.begin(), args.end());
    const int status = run_and_wait(argv, out_file);
    if (output != nullptr) {
      std::ifstream in(out_file);
      std::stringstream text;
      text << in.rdbuf();
      *output = text.str();
    }
    return status;
  }

 private:
  static bool port_free(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    ::close(fd);
    return free;
  }

  // A run of free ports in [21000, 29000) whose cluster bus ports (+10000) are free too.
  std::vector<int> choose_ports(int count) {
    std::random_device random;
    for (int attempt = 0; attempt < 200; ++attempt) {
      const int base = 21000 + static_cast<int>(random() % 7900);
      std::vector<int> ports;
      for (int port = base; port < base + count; ++port) {
        if (!port_free(port) || !port_free(port + 10000)) break;
        ports.push_back(port);
      }
      if (static_cast<int>(ports.size()) == count) return ports;
    }
    throw std::runtime_error("no free ports for a Redis Cluster in 21000..29000");
  }

  std::filesystem::path node_dir(int port) const { return dir_ / std::to_string(port); }
  std::filesystem::path node_log(int port) const { return node_dir(port) / "redis.log"; }

  std::string log_tail(int port) const {
    std::ifstream in(node_log(port));
    std::stringstream text;
    text << in.rdbuf();
    const std::string all = text.str();
    return all.size() > 2000 ? all.substr(all.size() - 2000) : all;
  }

  // fork+exec with the child bound to this thread's lifetime (PR_SET_PDEATHSIG); only
  // async-signal-safe calls between fork and exec.
  static pid_t spawn(const std::vector<std::string>& args, const std::filesystem::path& output) {
    std::vector<std::string> storage = args;
    std::vector<char*> argv;
    for (std::string& arg : storage) argv.push_back(arg.data());
    argv.push_back(nullptr);
    const std::string output_path = output.string();
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      const int fd = ::open(output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd >= 0) {
        ::dup2(fd, STDOUT_FILENO);
        ::dup2(fd, STDERR_FILENO);
      }
      const int null_fd = ::open("/dev/null", O_RDONLY);
      if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
      ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
    return pid;
  }

  int run_and_wait(const std::vector<std::string>& args,
                   const std::filesystem::path& output) const {
    const pid_t pid = spawn(args, output);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  void start_node(int port) {
    std::filesystem::create_directories(node_dir(port));
    const std::vector<std::string> args = {"redis-server",
                                           "--bind",
                                           "127.0.0.1",
                                           "--port",
                                           std::to_string(port),
                                           "--cluster-enabled",
                                           "yes",
                                           "--cluster-config-file",
                                           "nodes.conf",
                                           "--cluster-node-timeout",
                                           std::to_string(options_.node_timeout_ms),
                                           "--dir",
                                           node_dir(port).string(),
                                           "--save",
                                           "",
                                           "--appendonly",
                                           "no",
                                           "--daemonize",
                                           "no",
                                           "--logfile",
                                           node_log(port).string(),
                                           "--protected-mode",
                                           "yes"};
    pids_[port] = spawn(args, node_dir(port) / "stdout.log");
  }

  void wait_for_ping(int port) const {
    for (int attempt = 0; attempt < 200; ++attempt) {
      if (redis_command_text(port, {"PING"}) == "PONG") return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    throw std::runtime_error("redis-server on 127.0.0.1:" + std::to_string(port) +
                             " does not answer PING; log:\n" + log_tail(port));
  }

  void start_all() {
    const int count = options_.masters * (1 + options_.replicas_per_master);
    ports_ = choose_ports(count);
    for (const int port : ports_) start_node(port);
    for (const int port : ports_) wait_for_ping(port);
    std::vector<std::string> create = {"--cluster", "create"};
    for (const int port : ports_) create.push_back("127.0.0.1:" + std::to_string(port));
    create.insert(create.end(), {"--cluster-replicas", std::to_string(options_.replicas_per_master),
                                 "--cluster-yes"});
    std::string output;
    if (run_redis_cli(create, &output) != 0) {
      throw std::runtime_error("redis-cli --cluster create failed:\n" + output);
    }
    wait_until_ready();
  }

  bool ready(std::string* why) const {
    std::string reference;
    for (const auto& [port, pid] : pids_) {
      if (pid <= 0) continue;
      const std::string info = redis_command_text(port, {"CLUSTER", "INFO"});
      if (info.find("cluster_state:ok") == std::string::npos) {
        *why = "127.0.0.1:" + std::to_string(port) + " says " + info.substr(0, 200);
        return false;
      }
      const std::string replication = redis_command_text(port, {"INFO", "replication"});
      if (replication.find("role:slave") != std::string::npos &&
          replication.find("master_link_status:up") == std::string::npos) {
        *why = "replica 127.0.0.1:" + std::to_string(port) + " has not synced yet";
        return false;
      }
      // Every node must describe the same map, with every replica it should know.
      const std::string description = describe_slot_map(port, why);
      if (description.empty()) return false;
      if (reference.empty()) reference = description;
      if (description != reference) {
        *why = "nodes disagree on the slot map: " + reference + " vs " + description;
        return false;
      }
    }
    return true;
  }

  // "first-last:master[/replica...];..." per range as 127.0.0.1:port reports it, or ""
  // (with the reason in *why) when the map is incomplete: while every node runs, each
  // range must list replicas_per_master replicas.
  std::string describe_slot_map(int port, std::string* why) const {
    RedisContextPtr context = connect_to_redis(port);
    if (!context) return "";
    RedisReplyPtr reply = redis_command(context.get(), {"CLUSTER", "SLOTS"});
    if (!reply || reply->type != REDIS_REPLY_ARRAY) return "";
    bool all_running = true;
    for (const auto& [node_port, pid] : pids_) all_running = all_running && pid > 0;
    std::vector<std::string> ranges;
    for (size_t i = 0; i < reply->elements; ++i) {
      const redisReply* range = reply->element[i];
      std::string text = std::to_string(range->element[0]->integer) + "-" +
                         std::to_string(range->element[1]->integer) + ":";
      std::vector<long long> replicas;
      for (size_t r = 3; r < range->elements; ++r)
        replicas.push_back(range->element[r]->element[1]->integer);
      std::sort(replicas.begin(), replicas.end());
      const int master_port = static_cast<int>(range->element[2]->element[1]->integer);
      if (!is_running(master_port)) {
        *why = "127.0.0.1:" + std::to_string(port) + " still names the stopped node " +
               std::to_string(master_port) + " as a master";
        return "";
      }
      text += std::to_string(master_port);
      for (const long long replica : replicas) text += "/" + std::to_string(replica);
      if (all_running && static_cast<int>(replicas.size()) != options_.replicas_per_master) {
        *why = "127.0.0.1:" + std::to_string(port) + " does not list every replica yet: " + text;
        return "";
      }
      ranges.push_back(text);
    }
    std::sort(ranges.begin(), ranges.end());
    std::string description;
    for (const std::string& range : ranges) description += range + ";";
    return description;
  }

  void stop_all() {
    for (auto& [port, pid] : pids_) {
      if (pid > 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        pid = -1;
      }
    }
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  Options options_;
  std::filesystem::path dir_;
  std::vector<int> ports_;
  std::map<int, pid_t> pids_;
};

}  // namespace kvdex::testing

#endif  // KVDEX_TESTS_REDIS_CLUSTER_LOCAL_REDIS_CLUSTER_H_
