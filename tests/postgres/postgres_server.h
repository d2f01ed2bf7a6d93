// A throwaway PostgreSQL server for the tests: initdb in a temporary directory (as
// the `postgres` user when running as root: initdb and postgres refuse root),
// started on 127.0.0.1 at a free port, trust authentication, fsync off; stopped
// and removed by the destructor whatever happened. Needs Debian's postgresql
// package (the server binaries under /usr/lib/postgresql/<version>/bin).
#ifndef KVDEX_TESTS_POSTGRES_POSTGRES_SERVER_H_
#define KVDEX_TESTS_POSTGRES_POSTGRES_SERVER_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace kvdex::testing {

class PostgresServer {
 public:
  PostgresServer() {
    bindir_ = find_bindir();
    char pattern[] = "/tmp/kvdex-pg-test-XXXXXX";
    if (mkdtemp(pattern) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    if (geteuid() == 0) {
      const passwd* pw = getpwnam("postgres");
      if (pw == nullptr) throw std::runtime_error("no `postgres` user (Debian package postgresql)");
      if (chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0)
        throw std::runtime_error("chown " + dir_ + " failed");
      as_user_ = "cd / && runuser -u postgres -- ";
    }
    run(bindir_ + "/initdb -D " + dir_ +
            "/data -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >" + dir_ + "/initdb.log 2>&1",
        "initdb");
    port_ = free_port();
    start();
  }

  ~PostgresServer() {
    stop_quietly();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  void start() {
    run(bindir_ + "/pg_ctl start -w -t 60 -D " + dir_ + "/data -l " + dir_ +
            "/postgres.log -o \"-c listen_addresses=127.0.0.1 -p " + std::to_string(port_) +
            " -c unix_socket_directories=" + dir_ + " -c fsync=off -c max_connections=300\"" +
            " >/dev/null 2>&1",
        "pg_ctl start");
    running_ = true;
  }

  // Stops the server the hard way (no shutdown checkpoint, sessions cut): as a crash.
  void stop_immediately() {
    run(bindir_ + "/pg_ctl stop -w -t 60 -m immediate -D " + dir_ + "/data >/dev/null 2>&1",
        "pg_ctl stop");
    running_ = false;
  }

  // Runs SQL through psql as the superuser; returns its output (unaligned, tuples only).
  std::string psql(const std::string& sql, const std::string& database = "postgres") const {
    const std::string out = dir_ + "/psql.out";
    const std::string sql_file = dir_ + "/psql.sql";
    {
      FILE* f = std::fopen(sql_file.c_str(), "w");
      std::fputs(sql.c_str(), f);
      std::fclose(f);
    }
    const std::string command = bindir_ + "/psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p " +
                                std::to_string(port_) + " -U postgres -d " + database + " -f " +
                                sql_file + " >" + out + " 2>&1";
    const int status = std::system(command.c_str());
    std::string text;
    if (FILE* f = std::fopen(out.c_str(), "r")) {
      char buffer[4096];
      std::size_t n;
      while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) text.append(buffer, n);
      std::fclose(f);
    }
    if (status != 0) throw std::runtime_error("psql failed: " + text);
    while (!text.empty() && text.back() == '\n') text.pop_back();
    return text;
  }

  int port() const { return port_; }
  std::string conninfo(const std::string& database = "postgres") const {
    return "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=" + database +
           " user=postgres connect_timeout=5";
  }
  std::string uri(const std::string& database = "postgres") const {
    return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + database;
  }

 private:
  static std::string find_bindir() {
    if (const char* env = std::getenv("KVDEX_PG_BINDIR")) return env;
    std::string best;
    for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql")) {
      const std::string bin = entry.path().string() + "/bin";
      if (std::filesystem::exists(bin + "/initdb") && bin > best) best = bin;
    }
    if (best.empty())
      throw std::runtime_error("PostgreSQL server binaries not found (Debian package postgresql)");
    return best;
  }

  static int free_port() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      close(fd);
      throw std::runtime_error("no free port on 127.0.0.1");
    }
    close(fd);
    return ntohs(addr.sin_port);
  }

  void run(const std::string& command, const std::string& what) const {
    const std::string full = "sh -c '" + as_user_ + command + "'";
    if (std::system(full.c_str()) != 0)
      throw std::runtime_error(what + " failed (" + command + "); logs in " + dir_);
  }

  void stop_quietly() noexcept {
    if (!running_) return;
    const std::string command = "sh -c '" + as_user_ + bindir_ +
                                "/pg_ctl stop -w -t 60 -m immediate -D " + dir_ +
                                "/data >/dev/null 2>&1'";
    [[maybe_unused]] int status = std::system(command.c_str());
    running_ = false;
  }

  std::string bindir_;
  std::string dir_;
  std::string as_user_;
  int port_ = 0;
  bool running_ = false;
};

// The one server of a test binary (a gtest Environment starts it once: initdb
// costs seconds).
PostgresServer& postgres_server();

}  // namespace kvdex::testing

#endif  // KVDEX_TESTS_POSTGRES_POSTGRES_SERVER_H_
