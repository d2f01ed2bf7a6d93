// Parsing and checking of RedisOptions (kvdex::parse_redis_uri is declared in
// kvdex/redis_kvstore.h). Internal; shared by the standalone store and the cluster
// layer.
//
// Thread safety: pure functions. Errors: Error(kInvalidArgument) naming the URI part
// or option that is wrong; Error(kNotSupported) for rediss://.
#ifndef KVDEX_SRC_REDIS_REDIS_OPTIONS_H_
#define KVDEX_SRC_REDIS_REDIS_OPTIONS_H_

#include <string>
#include <string_view>

#include "kvdex/redis_kvstore.h"

namespace kvdex::detail {

// Throws Error(kInvalidArgument) naming the first option out of its range.
void check_redis_options(const RedisOptions& options);

// "host:port" ("[::1]:port" for an IPv6 address), as messages name a server.
std::string redis_address(std::string_view host, int port);

// Decodes %XX escapes (user, password, host of a URI). Throws Error(kInvalidArgument)
// for a malformed escape, naming `what`.
std::string percent_decode(std::string_view text, std::string_view what);

}  // namespace kvdex::detail

#endif  // KVDEX_SRC_REDIS_REDIS_OPTIONS_H_
