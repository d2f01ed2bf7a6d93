// The whole public API of kvdex. Including the individual headers is equally fine.
#ifndef KVDEX_KVDEX_H_
#define KVDEX_KVDEX_H_

#include "kvdex/error.h"
#include "kvdex/filesystem.h"
#include "kvdex/future.h"
#include "kvdex/in_memory.h"
#include "kvdex/insertion_ordered_map.h"
#include "kvdex/json.h"
#include "kvdex/json_file_store.h"
#include "kvdex/kvstore.h"
#include "kvdex/lmdb_kvstore.h"  // declared always; defined when built with KVDEX_WITH_LMDB
#include "kvdex/open.h"
#include "kvdex/postgres_kvstore.h"  // declared always; defined when built with KVDEX_WITH_POSTGRES
#include "kvdex/redis_cluster_kvstore.h"  // declared always; defined when built with KVDEX_WITH_REDIS
#include "kvdex/redis_kvstore.h"  // declared always; defined when built with KVDEX_WITH_REDIS
#include "kvdex/simple_kvstore.h"
#include "kvdex/thread_annotations.h"
#include "kvdex/value.h"
#include "kvdex/version.h"
#include "kvdex/write_batch.h"

#endif  // KVDEX_KVDEX_H_
