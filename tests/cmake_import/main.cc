// A program that uses kvdex only through its installed package.
#include <kvdex/kvdex.h>

#include <iostream>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  kvdex::SimpleKVStore store;
  store.put("node", {{"text", "hello"}, {"n", 1.0}}, "docstore/data");
  store.persist(argv[1]);
  auto loaded = kvdex::SimpleKVStore::from_persist_path(argv[1]);
  auto value = loaded->get("node", "docstore/data");
  if (!value || (*value)["text"] != "hello") return 1;
  auto memory = kvdex::open("memory:");
  memory->put("k", {{"v", 1}});
  if (!memory->aget("k").get()) return 1;
  if (kvdex::json::canonicalize("[1.50]") != "[1.5]") return 1;
  std::cout << "consumer ok\n";
  return 0;
}
