#include "redis/redis_test_server.h"
