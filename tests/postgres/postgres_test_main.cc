// main() of kvdex_postgres_test: one PostgreSQL server for the whole binary.
#include <gtest/gtest.h>

#include <memory>

#include "postgres/postgres_server.h"

namespace kvdex::testing {
namespace {

std::unique_ptr<PostgresServer> g_server;

class PostgresEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { g_server = std::make_unique<PostgresServer>(); }
  void TearDown() override { g_server.reset(); }
};

}  // namespace

PostgresServer& postgres_server() { return *g_server; }

}  // namespace kvdex::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new kvdex::testing::PostgresEnvironment);
  return RUN_ALL_TESTS();
}
