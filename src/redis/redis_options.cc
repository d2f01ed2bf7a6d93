#include "redis/redis_options.h"

#include <charconv>
#include <cstdint>
#include <limits>

#include "kvdex/error.h"

namespace kvdex {
namespace detail {
namespace {

[[noreturn]] void bad_uri(std::string_view uri, const std::string& why) {
  throw Error(ErrorCode::kInvalidArgument,
              "invalid Redis URI '" + shorten_for_message(uri) + "': " + why);
}

// A decimal integer in [low, high], or throws naming `what`.
std::int64_t parse_int(std::string_view uri, std::string_view text, std::string_view what,
                       std::int64_t low, std::int64_t high) {
  std::int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end || value < low || value > high) {
    bad_uri(uri, std::string(what) + " must be an integer from " + std::to_string(low) + " to " +
                     std::to_string(high) + ", not '" + shorten_for_message(text) + "'");
  }
  return value;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void check_range(std::int64_t value, std::int64_t low, std::int64_t high, std::string_view what) {
  if (value < low || value > high) {
    throw Error(ErrorCode::kInvalidArgument,
                "RedisOptions: " + std::string(what) + " must be from " + std::to_string(low) +
                    " to " + std::to_string(high) + ", not " + std::to_string(value));
  }
}

}  // namespace

std::string percent_decode(std::string_view text, std::string_view what) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    const bool complete = i + 2 < text.size();
    const int hi = complete ? hex_digit(text[i + 1]) : -1;
    const int lo = complete ? hex_digit(text[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      throw Error(ErrorCode::kInvalidArgument,
                  "malformed %-escape in the " + std::string(what) + " of a Redis URI");
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

std::string redis_address(std::string_view host, int port) {
  const bool ipv6 = host.find(':') != std::string_view::npos;
  return (ipv6 ? "[" + std::string(host) + "]" : std::string(host)) + ":" + std::to_string(port);
}

void check_redis_options(const RedisOptions& options) {
  if (options.host.empty()) throw Error(ErrorCode::kInvalidArgument, "RedisOptions: empty host");
  if (options.host.find('\0') != std::string::npos)
    throw Error(ErrorCode::kInvalidArgument, "RedisOptions: host holds a NUL byte");
  check_range(options.port, 1, 65535, "port");
  check_range(options.db, 0, std::numeric_limits<int>::max(), "db");
  check_range(options.connect_timeout.count(), 1, 3'600'000, "connect_timeout (ms)");
  check_range(options.command_timeout.count(), 1, 3'600'000, "command_timeout (ms)");
  check_range(options.pool_size, 1, 1024, "pool_size");
  check_range(options.async_connections, 1, 64, "async_connections");
  check_range(options.retries, 0, 100, "retries");
  check_range(options.retry_backoff.count(), 0, 60'000, "retry_backoff (ms)");
  check_range(options.scan_count, 1, 1'000'000, "scan_count");
  check_range(options.shards, 0, 1024, "shards");
  if (!options.password.empty() || !options.user.empty()) {
    if (options.password.empty())
      throw Error(ErrorCode::kInvalidArgument, "RedisOptions: a user needs a password");
  }
}

}  // namespace detail

RedisOptions parse_redis_uri(std::string_view uri) {
  using detail::bad_uri;
  RedisOptions options;
  constexpr std::string_view kPlain = "redis://";
  if (uri.starts_with("rediss://")) {
    throw Error(ErrorCode::kNotSupported,
                "'" + shorten_for_message(uri) +
                    "': rediss:// (Redis over TLS) is not supported by this kvdex; use redis:// "
                    "over a trusted network or a TLS tunnel");
  }
  if (!uri.starts_with(kPlain)) bad_uri(uri, "expected redis://[user[:password]@]host[:port][/db]");
  std::string_view rest = uri.substr(kPlain.size());
  std::string_view query;
  if (const auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string_view path;
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    path = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    if (const auto colon = userinfo.find(':'); colon != std::string_view::npos) {
      options.user = detail::percent_decode(userinfo.substr(0, colon), "user");
      options.password = detail::percent_decode(userinfo.substr(colon + 1), "password");
    } else {
      // redis-py reads redis://secret@host as a password only.
      options.password = detail::percent_decode(userinfo, "password");
    }
  }
  std::string_view host = rest;
  std::string_view port_text;
  if (rest.starts_with('[')) {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) bad_uri(uri, "unclosed '[' in the host");
    host = rest.substr(1, close - 1);
    const std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') bad_uri(uri, "expected ':port' after ']'");
      port_text = after.substr(1);
    }
  } else if (const auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port_text = rest.substr(colon + 1);
  }
  if (!host.empty()) options.host = detail::percent_decode(host, "host");
  if (!port_text.empty() || rest.ends_with(':'))
    options.port = static_cast<int>(detail::parse_int(uri, port_text, "the port", 1, 65535));
  if (!path.empty())
    options.db = static_cast<int>(
        detail::parse_int(uri, path, "the database number", 0, std::numeric_limits<int>::max()));
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (item.empty()) continue;
    const auto eq = item.find('=');
    const std::string_view name = item.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? "" : item.substr(eq + 1);
    auto number = [&](std::int64_t low, std::int64_t high) {
      return detail::parse_int(uri, value, "option " + std::string(name), low, high);
    };
    if (name == "timeout_ms") {
      options.connect_timeout = options.command_timeout =
          std::chrono::milliseconds(number(1, 3'600'000));
    } else if (name == "connect_timeout_ms") {
      options.connect_timeout = std::chrono::milliseconds(number(1, 3'600'000));
    } else if (name == "command_timeout_ms") {
      options.command_timeout = std::chrono::milliseconds(number(1, 3'600'000));
    } else if (name == "pool") {
      options.pool_size = static_cast<int>(number(1, 1024));
    } else if (name == "async_connections") {
      options.async_connections = static_cast<int>(number(1, 64));
    } else if (name == "retries") {
      options.retries = static_cast<int>(number(0, 100));
    } else if (name == "backoff_ms") {
      options.retry_backoff = std::chrono::milliseconds(number(0, 60'000));
    } else if (name == "scan_count") {
      options.scan_count = static_cast<int>(number(1, 1'000'000));
    } else if (name == "cluster") {
      options.cluster = number(0, 1) == 1;
    } else if (name == "shards") {
      options.shards = static_cast<int>(number(0, 1024));
    } else if (name == "db") {
      options.db = static_cast<int>(number(0, std::numeric_limits<int>::max()));
    } else {
      bad_uri(uri, "unknown option '" + shorten_for_message(name) +
                       "' (known: timeout_ms, connect_timeout_ms, command_timeout_ms, pool, "
                       "async_connections, retries, backoff_ms, scan_count, db, cluster, shards)");
    }
  }
  detail::check_redis_options(options);
  return options;
}

}  // namespace kvdex
